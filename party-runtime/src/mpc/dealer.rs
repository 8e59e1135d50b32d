//! The insecure trusted-first-party mode (`beaver: trusted_first_party`, SPU's default, kept only to compare
//! like for like): node 0 deals every correlation. Node 1's part of a correlation comes from an AES-CTR stream
//! whose seed node 0 sent once; node 0 draws its own part privately and fixes it so the correlation holds. The
//! online messages are the ones a separate dealer would allow, so node 1 learns nothing, but node 0 knows node
//! 1's part of every correlation and can decrypt all that node 1 sends: that is why the mode is labelled
//! insecure.

use super::backend::Backend;
use super::engine::Mpc;
use super::local::{add, draw, put_ring, random, ring_from_bytes, sub};
use crate::context::compute;
use crate::crypto::prg::Prg;
use crate::error::{Error, Result};
use crate::ring::{BitReader, BitWriter, Ring};

/// At most this many message elements per direction in one dealt round (bounds memory on large batches).
const DEALT_CHUNK: usize = 1 << 20;

/// One direction of a dealt product `a * v mod 2^out`: the chooser's mask `alpha` and share `gamma_r`, the
/// sender's mask `beta` and share `gamma_s`, with `gamma_r + gamma_s = alpha * beta` (per element of the item).
struct Direction<R> {
    alpha: Vec<R>,
    gamma_r: Vec<R>,
    beta: Vec<R>,
    gamma_s: Vec<R>,
}

impl<R: Ring> Mpc<'_, R> {
    /// Node 1's randomness for the next dealt call (see [`super::backend::Dealer::stream`]).
    pub(super) async fn dealer_stream(&mut self) -> Result<Prg> {
        match &mut self.backend {
            Backend::TrustedFirstParty(dealer) => dealer.stream(&self.link, &mut self.rng).await,
            Backend::Secure(_) => Err(Error::Internal("a dealt correlation asked of the secure backend".into())),
        }
    }

    /// Beaver multiplication with a dealt triple (`sizes`: the lengths of x, y and the product): node 1's triple
    /// share comes from the dealer stream, node 0's makes the product hold.
    pub(super) async fn beaver_dealt(
        &mut self,
        x: &[R],
        y: &[R],
        sizes: [usize; 3],
        prod: impl Fn(&[R], &[R]) -> Vec<R>,
    ) -> Result<Vec<R>> {
        let mut stream = self.dealer_stream().await?;
        let [nx, ny, nz] = sizes;
        let dealt: Vec<R> = compute(|| random(&mut stream, nx + ny + nz));
        let (u1, rest) = dealt.split_at(nx);
        let (v1, w1) = rest.split_at(ny);
        let (u, v, w) = if self.link.me == 0 {
            let mut own = Prg::private(&mut self.rng);
            let u0: Vec<R> = random(&mut own, nx);
            let v0: Vec<R> = random(&mut own, ny);
            let w = compute(|| prod(&add(&u0, u1), &add(&v0, v1)));
            let w0 = sub(&w, w1);
            (u0, v0, w0)
        } else {
            (u1.to_vec(), v1.to_vec(), w1.to_vec())
        };
        let mut mine = sub(x, &u);
        mine.extend(sub(y, &v));
        let opened = self.reveal(&mine, None).await?.unwrap_or_default();
        let (e, f) = opened.split_at(nx);
        Ok(compute(|| {
            let mut z = add(&w, &add(&prod(e, &v), &prod(&u, f)));
            if self.link.me == 0 {
                z = add(&z, &prod(e, f));
            }
            z
        }))
    }

    /// Elementwise `x * y` with a dealt triple per element, in one pass over the data each way (the same protocol
    /// as [`Mpc::beaver_dealt`], without its intermediate vectors).
    pub(super) async fn mul_dealt(&mut self, x: &[R], y: &[R]) -> Result<Vec<R>> {
        let mut stream = self.dealer_stream().await?;
        let me = self.link.me;
        let width = (R::BITS / 8) as usize;
        let mut own = Prg::private(&mut self.rng);
        let (triples, mine) = compute(|| {
            let mut triples = Vec::with_capacity(3 * x.len());
            let mut mine = Vec::with_capacity(2 * x.len() * width);
            for (x, y) in x.iter().zip(y) {
                let (u1, v1, w1): (R, R, R) = (draw(&mut stream), draw(&mut stream), draw(&mut stream));
                let (u, v, w) = if me == 0 {
                    let (u0, v0): (R, R) = (draw(&mut own), draw(&mut own));
                    (u0, v0, u0.add(u1).mul(v0.add(v1)).sub(w1))
                } else {
                    (u1, v1, w1)
                };
                triples.extend([u, v, w]);
                put_ring(&mut mine, x.sub(u));
                put_ring(&mut mine, y.sub(v));
            }
            (triples, mine)
        });
        let n = mine.len();
        self.send("mpc/beaver", mine).await?;
        let theirs = self.recv("mpc/beaver", n).await?;
        Ok(compute(|| {
            x.iter()
                .zip(y)
                .zip(triples.chunks_exact(3).zip(theirs.chunks_exact(2 * width)))
                .map(|((x, y), (t, b))| {
                    // e = x - u and f = y - v opened; z = w + e v + u f (+ e f at node 0).
                    let e = x.sub(t[0]).add(ring_from_bytes(&b[..width]));
                    let f = y.sub(t[1]).add(ring_from_bytes(&b[width..]));
                    let z = t[2].add(e.mul(t[1])).add(t[0].mul(f));
                    if me == 0 { z.add(e.mul(f)) } else { z }
                })
                .collect()
        }))
    }

    /// The dealt stand-in for [`Mpc::gilboa_both`]: shares of `a_peer * v` (this party sends `v`, `per.0`
    /// elements per item) and of `a * v_peer` (this party chooses with `a`, the peer sending `per.1` per item),
    /// mod `2^out`. Choices are single bits (`bits == 1`) or whole shares (`bits >= out`). One round: the chooser
    /// sends its choice masked by `alpha`, the sender its vector masked by `beta`.
    pub(super) async fn dealt_gilboa(
        &mut self,
        tag: &str,
        (v, a): (&[R], &[R]),
        per: (usize, usize),
        bits: u32,
        out: u32,
    ) -> Result<(Vec<R>, Vec<R>)> {
        let items = (v.len().checked_div(per.0).unwrap_or(0), a.len());
        let step = ((DEALT_CHUNK / per.0.max(1)).max(1), (DEALT_CHUNK / per.1.max(1)).max(1));
        let rounds = items.0.div_ceil(step.0).max(items.1.div_ceil(step.1));
        let (mut sent, mut chosen) = (Vec::with_capacity(v.len()), Vec::with_capacity(a.len() * per.1));
        for i in 0..rounds {
            let vs = &v[(i * step.0 * per.0).min(v.len())..((i + 1) * step.0 * per.0).min(v.len())];
            let as_ = &a[(i * step.1).min(a.len())..((i + 1) * step.1).min(a.len())];
            let (s, r) = self.dealt_round(tag, (vs, as_), per, bits, out).await?;
            sent.extend(s);
            chosen.extend(r);
        }
        Ok((sent, chosen))
    }

    async fn dealt_round(
        &mut self,
        tag: &str,
        (v, a): (&[R], &[R]),
        per: (usize, usize),
        bits: u32,
        out: u32,
    ) -> Result<(Vec<R>, Vec<R>)> {
        let me = self.link.me;
        let aw = if bits == 1 { 1 } else { out };
        let mut stream = self.dealer_stream().await?;
        // Direction 0: node 0 sends, node 1 chooses; direction 1 the reverse. Node 1's parts come from the
        // stream in this fixed order, so both nodes draw the same values.
        let send_items = v.len().checked_div(per.0).unwrap_or(0);
        let (n01, per01) = if me == 0 { (send_items, per.0) } else { (a.len(), per.1) };
        let (n10, per10) = if me == 0 { (a.len(), per.1) } else { (send_items, per.0) };
        let (d01, d10) = compute(|| {
            let d01 = self.deal(&mut stream, n01, per01, aw, true);
            let d10 = self.deal(&mut stream, n10, per10, aw, false);
            (d01, d10)
        });
        let (as_sender, as_chooser) = if me == 0 { (d01, d10) } else { (d10, d01) };
        // This party's message: its masked choices, then its masked vectors.
        let msg = compute(|| {
            let mut w = BitWriter::with_capacity(a.len() * aw as usize + v.len() * out as usize);
            for (x, m) in a.iter().zip(&as_chooser.alpha) {
                w.put(masked_choice(*x, *m, bits, out).to_u128(), aw);
            }
            for (x, m) in v.iter().zip(&as_sender.beta) {
                w.put(x.sub(*m).to_u128(), out);
            }
            w.finish()
        });
        let dtag = format!("{tag}/dealt");
        self.send(&dtag, msg).await?;
        let want = (send_items * aw as usize + a.len() * per.1 * out as usize).div_ceil(8);
        let theirs = self.recv(&dtag, want).await?;
        Ok(compute(|| {
            let mut r = BitReader::new(&theirs);
            let mut sent = Vec::with_capacity(v.len());
            for (beta, gamma) in as_sender.beta.chunks(per.0.max(1)).zip(as_sender.gamma_s.chunks(per.0.max(1))) {
                let c = R::from_u128(r.get(aw).unwrap_or(0));
                for (b, g) in beta.iter().zip(gamma) {
                    // a = c + alpha (whole shares) or c ^ alpha (bits): the sender's share of a * v.
                    sent.push(if bits == 1 { flip(c).mul(*g).add(c.mul(*b)) } else { c.mul(*b).add(*g) });
                }
            }
            let mut chosen = Vec::with_capacity(a.len() * per.1);
            for (i, x) in a.iter().enumerate() {
                let alpha = as_chooser.alpha[i];
                let c = masked_choice(*x, alpha, bits, out);
                for g in &as_chooser.gamma_r[i * per.1..(i + 1) * per.1] {
                    let vm = R::from_u128(r.get(out).unwrap_or(0));
                    chosen.push(if bits == 1 {
                        flip(c).mul(alpha.mul(vm).add(*g)).add(c.mul(vm))
                    } else {
                        x.mul(vm).add(*g)
                    });
                }
            }
            (sent, chosen)
        }))
    }

    /// One direction's correlation for `n` items of `per` elements: node 1's side (the chooser's when
    /// `node1_chooses`) from the dealer stream, node 0's drawn privately and fixed to match. The party that is
    /// not node 0 sees only its own side; the other side's vectors are left empty there.
    fn deal(&mut self, stream: &mut Prg, n: usize, per: usize, aw: u32, node1_chooses: bool) -> Direction<R> {
        let outer = |a: &[R], b: &[R], g: &[R]| -> Vec<R> {
            b.chunks(per.max(1))
                .zip(a)
                .flat_map(|(bs, a)| bs.iter().map(move |b| a.mul(*b)))
                .zip(g)
                .map(|(p, g)| p.sub(*g))
                .collect()
        };
        let low = |v: Vec<R>, w: u32| -> Vec<R> { v.into_iter().map(|x| x.low(w)).collect() };
        if node1_chooses {
            let alpha = low(random(stream, n), aw);
            let gamma_r: Vec<R> = random(stream, n * per);
            if self.link.me == 1 {
                return Direction { alpha, gamma_r, beta: Vec::new(), gamma_s: Vec::new() };
            }
            let beta: Vec<R> = random(&mut Prg::private(&mut self.rng), n * per);
            let gamma_s = outer(&alpha, &beta, &gamma_r);
            Direction { alpha: Vec::new(), gamma_r: Vec::new(), beta, gamma_s }
        } else {
            let beta: Vec<R> = random(stream, n * per);
            let gamma_s: Vec<R> = random(stream, n * per);
            if self.link.me == 1 {
                return Direction { alpha: Vec::new(), gamma_r: Vec::new(), beta, gamma_s };
            }
            let alpha = low(random(&mut Prg::private(&mut self.rng), n), aw);
            let gamma_r = outer(&alpha, &beta, &gamma_s);
            Direction { alpha, gamma_r, beta: Vec::new(), gamma_s: Vec::new() }
        }
    }
}

/// The chooser's opened value: `a ^ alpha` on bits, `a - alpha` on whole shares.
fn masked_choice<R: Ring>(a: R, alpha: R, bits: u32, out: u32) -> R {
    if bits == 1 { a.add(alpha).low(1) } else { a.sub(alpha).low(out) }
}

/// `1 - 2c` for an opened bit `c`.
fn flip<R: Ring>(c: R) -> R {
    R::ONE.sub(c.shl(1))
}
