//! Elementwise products of two shared vectors by the slot scheme ([`super::slots`]), CHEETAH's
//! multiplication instead of Gilboa's 2 x k OTs per product. For `z = x y` with `x = x_0 + x_1` and
//! `y = y_0 + y_1`, each node computes `x_i y_i` itself; for the cross terms `x_0 y_1 + y_0 x_1` of one half
//! of the elements node 0 is the key holder: it encrypts `x_0` and `y_0` slot-wise mod each plaintext prime,
//! node 1 multiplies them by `y_1` and `x_1`, adds its mask `r` (statistically hiding the sum, which is never
//! reduced mod the primes' product), switches down, floods the noise and returns; node 0 decrypts and rebuilds
//! `x_0 y_1 + y_0 x_1 + r` by CRT, node 1 keeps `-r`. The other half runs with the roles swapped, so both
//! parties compute and both link directions carry ciphertexts. One round trip, pipelined in groups of blocks.

use std::ops::Range;

use rayon::prelude::*;

use super::he::{HeState, reduced_residues, residue_bytes, write_residues};
use super::peer::Peer;
use super::rlwe::{self, Product, PublicKey, SecretKey, ZeroEnc};
use super::slots::{self, SlotParams};
use crate::context::{PartyContext, compute};
use crate::crypto::prg::Prg;
use crate::error::{Error, Result};
use crate::ring::Ring;

/// Vectors shorter than this take Gilboa's OT product: a slot product costs whole ciphertexts per prime
/// (about 0.5 MB per plaintext prime even for one element).
pub const HE_MUL_MIN: usize = 2048;

/// Messages are cut into groups of blocks of about this many bytes, so decryption of one group overlaps the
/// transfer of the next.
const GROUP_BYTES: usize = 4 << 20;

const ENC: &str = "mpc/he/mul";
const RET: &str = "mpc/he/mul-ret";

/// How a half of the elements is cut: blocks of `N` slots, groups of blocks per message.
struct Layout {
    len: usize,
    n: usize,
    count: usize,
    groups: Vec<Range<usize>>,
}

impl Layout {
    fn new(sp: &SlotParams, len: usize) -> Layout {
        let n = sp.ct.n;
        let per_block = sp.count() * 2 * residue_bytes(sp.ct.limbs() * n);
        let group = (GROUP_BYTES / per_block).max(1);
        let blocks = len.div_ceil(n);
        let groups = (0..blocks).step_by(group).map(|b| b..(b + group).min(blocks)).collect();
        Layout { len, n, count: sp.count(), groups }
    }

    /// The elements of block `b`.
    fn block(&self, b: usize) -> Range<usize> {
        b * self.n..((b + 1) * self.n).min(self.len)
    }

    /// The (block, prime) tasks of a group.
    fn tasks(&self, group: &Range<usize>) -> Vec<(usize, usize)> {
        group.clone().flat_map(|b| (0..self.count).map(move |j| (b, j))).collect()
    }

    /// The public stream of ciphertext `w` (0 for `x`, 1 for `y`) of block `b` and prime `j`.
    fn stream(&self, b: usize, j: usize, w: usize) -> u64 {
        ((b * self.count + j) * 2 + w) as u64
    }
}

/// Elementwise product of two shared vectors by the slot scheme (not truncated), under this party's keys `he`
/// (FM64's lattice keys serve both rings: the slot scheme's ciphertexts are FM64's).
pub async fn mul_slots<R: Ring>(peer: &Peer<'_>, he: &mut HeState, seed: [u8; 16], x: &[R], y: &[R]) -> Result<Vec<R>> {
    let (n, me) = (x.len(), peer.me);
    let half = n / 2;
    let (own, other) = if me == 0 { (0..half, half..n) } else { (half..n, 0..half) };
    // As evaluator of the other half: a flooded coefficient per slot per plaintext prime, and a mask per value.
    let sp = slots::params::<R>();
    he.flooded.spend(other.len().div_ceil(sp.ct.n) * (sp.count() + 1) * sp.ct.n)?;
    let HeState { sk, peer: pk, rng, .. } = he;
    let (noise, masks) = (rng.fork(), rng.fork());
    let (mine, theirs) = tokio::try_join!(
        key_holder(peer.ctx, &peer.name, sk, (&x[own.clone()], &y[own.clone()]), seed, noise),
        evaluator(peer.ctx, &peer.name, pk, (&x[other.clone()], &y[other.clone()]), masks)
    )?;
    let mut cross = vec![R::ZERO; n];
    cross[own].copy_from_slice(&mine);
    cross[other].copy_from_slice(&theirs);
    Ok(compute(|| x.iter().zip(y).zip(&cross).map(|((x, y), c)| x.mul(*y).add(*c)).collect()))
}

/// The slot values of `v` in block `b` as integers.
fn block_values<'v, R: Ring>(v: &'v [R], layout: &Layout, b: usize) -> impl Iterator<Item = u128> + 'v {
    v[layout.block(b)].iter().map(|e| e.to_u128())
}

/// Encrypt this party's shares slot-wise, group by group, and decrypt the peer's masked cross terms.
async fn key_holder<R: Ring>(
    ctx: &PartyContext,
    peer: &str,
    sk: &SecretKey,
    (x, y): (&[R], &[R]),
    seed: [u8; 16],
    mut noise: Prg,
) -> Result<Vec<R>> {
    let sp = slots::params::<R>();
    let layout = Layout::new(sp, x.len());
    let sent = residue_bytes(sp.ct.limbs() * sp.ct.n);
    let send = async {
        for group in &layout.groups {
            let tasks: Vec<((usize, usize), Prg)> =
                layout.tasks(group).into_iter().map(|t| (t, noise.fork())).collect();
            // Each task writes its two ciphertexts into its own part of the message.
            let mut msg = vec![0u8; 16 + tasks.len() * 2 * sent];
            msg[..16].copy_from_slice(&seed);
            compute(|| {
                msg[16..].par_chunks_mut(2 * sent).zip(tasks).for_each(|(out, ((b, j), mut noise))| {
                    for (w, (v, part)) in [x, y].into_iter().zip(out.chunks_exact_mut(sent)).enumerate() {
                        let m = sp.encode(j, block_values(v, &layout, b));
                        let c0 = sk.encrypt_with(&mut noise, &sp.scaled(j, &m), seed, layout.stream(b, j, w));
                        write_residues(part, &c0);
                    }
                })
            });
            ctx.channel.send_bytes(peer, ENC, msg).await.map_err(|e| ctx.link_error(e))?;
        }
        Ok::<_, Error>(())
    };
    let receive = async {
        let limbs = sp.ct.returned_limbs();
        let seg = residue_bytes(limbs * sp.ct.n);
        let mut out = Vec::with_capacity(x.len());
        for group in &layout.groups {
            let bytes = ctx.channel.recv_bytes(peer, RET).await.map_err(|e| ctx.link_error(e))?;
            if bytes.first() != Some(&1) {
                return Err(Error::Internal(format!("{peer} could not evaluate the RLWE product (see its error)")));
            }
            let tasks = layout.tasks(group);
            let expected = 1 + tasks.len() * 2 * seg;
            if bytes.len() != expected {
                return Err(ctx.bad_message(peer, RET, format!("expected {expected} bytes, got {}", bytes.len())));
            }
            let kept = &sp.ct.primes[..limbs];
            let slots: Vec<Vec<u64>> = compute(|| {
                tasks
                    .par_iter()
                    .enumerate()
                    .map(|(k, &(_, j))| {
                        let at = 1 + k * 2 * seg;
                        let c1 = reduced_residues(&bytes[at..at + seg], kept, sp.ct.n)?;
                        let c0 = reduced_residues(&bytes[at + seg..at + 2 * seg], kept, sp.ct.n)?;
                        Ok(sp.decode(j, &sk.phase(&c1, &c0)))
                    })
                    .collect::<std::result::Result<_, String>>()
            })
            .map_err(|e| ctx.bad_message(peer, RET, e))?;
            for (b, per_prime) in group.clone().zip(slots.chunks_exact(layout.count)) {
                out.extend((0..layout.block(b).len()).map(|s| sp.crt::<R>(per_prime.iter().map(|z| z[s]))));
            }
        }
        Ok(out)
    };
    let ((), out) = tokio::try_join!(send, receive)?;
    Ok(out)
}

/// Multiply the peer's ciphertexts by this party's shares, mask, flood and return them; returns this party's
/// shares of the cross terms (`-r`).
async fn evaluator<R: Ring>(
    ctx: &PartyContext,
    peer: &str,
    pk: &PublicKey,
    (x, y): (&[R], &[R]),
    mut rng: Prg,
) -> Result<Vec<R>> {
    let sp = slots::params::<R>();
    let layout = Layout::new(sp, x.len());
    let ct = sp.ct;
    let seg = residue_bytes(ct.limbs() * ct.n);
    let positions: Vec<usize> = (0..ct.n).collect();
    let mut shares = Vec::with_capacity(x.len());
    for group in &layout.groups {
        let bytes = ctx.channel.recv_bytes(peer, ENC).await.map_err(|e| ctx.link_error(e))?;
        let tasks = layout.tasks(group);
        let expected = 16 + tasks.len() * 2 * seg;
        if bytes.len() != expected {
            return Err(ctx.bad_message(peer, ENC, format!("expected {expected} bytes, got {}", bytes.len())));
        }
        let seed: [u8; 16] = bytes[..16].try_into().unwrap_or_default();
        let masks: Vec<(Vec<Vec<u64>>, Vec<R>)> =
            group.clone().map(|b| sp.mask::<R>(&mut rng, layout.block(b).len())).collect();
        let keyed: Vec<((usize, usize), Prg)> = tasks.iter().map(|&t| (t, rng.fork())).collect();
        // Each task writes its returned ciphertext into its own part of the answer (status byte first).
        let ret = residue_bytes(ct.returned_limbs() * ct.n);
        let mut msg = vec![0u8; 1 + tasks.len() * 2 * ret];
        msg[0] = 1;
        let evaluated: std::result::Result<(), String> = compute(|| {
            msg[1..].par_chunks_mut(2 * ret).zip(keyed).enumerate().try_for_each(|(k, (out, ((b, j), mut rng)))| {
                let at = 16 + k * 2 * seg;
                let received = |w: usize| -> std::result::Result<_, String> {
                    let part = &bytes[at + w * seg..at + (w + 1) * seg];
                    let c0 = reduced_residues(part, &ct.primes, ct.n).map_err(|e| format!("from {peer}: {e}"))?;
                    Ok(rlwe::received(ct, c0, seed, layout.stream(b, j, w)))
                };
                let mut prod = Product::new(ZeroEnc::new(ct, pk, &mut rng));
                // Enc(x_0) times y_1, Enc(y_0) times x_1.
                for (w, v) in [y, x].into_iter().enumerate() {
                    let (c0, c1) = received(w)?;
                    let (pt, norm) = sp.plaintext(j, block_values(v, &layout, b));
                    prod.add(ct, (&pt, norm), &c0, &c1);
                }
                let mask = sp.encode(j, masks[b - group.start].0[j].iter().map(|&r| r as u128));
                let (c1, c0) = prod.finish_with(ct, (&positions, sp.flood), &sp.scaled(j, &mask), &mut rng)?;
                let (o1, o0) = out.split_at_mut(ret);
                write_residues(o1, &c1);
                write_residues(o0, &c0);
                Ok(())
            })
        });
        // A refusal (status byte 0) still answers, so the key holder fails at once.
        if let Err(e) = evaluated {
            let _ = ctx.channel.send_bytes(peer, RET, vec![0]).await;
            return Err(Error::Internal(format!("RLWE product: {e}")));
        }
        ctx.channel.send_bytes(peer, RET, msg).await.map_err(|e| ctx.link_error(e))?;
        shares.extend(masks.into_iter().flat_map(|(_, s)| s));
    }
    Ok(shares)
}
