//! Plaintext-matrix times shared-vector products by RLWE ([`super::rlwe`]), the CHEETAH-style linear layer:
//! for `A b` with `A` at one node and `b = b_0 + b_1` shared, the owner computes `A b_own` locally; the other
//! node encrypts its share under its own key, the owner multiplies the ciphertexts by `A` (coefficient
//! packing: a row block of `A` and a chunk of the vector are two polynomials whose product holds the block's
//! inner products at known coefficients), adds a random mask `R` and flooding noise, and returns only those
//! coefficients. The key holder decrypts `A b_other + R`; the owner's share is `A b_own - R`.
//!
//! A shared matrix of `q` columns goes `width` columns to a ciphertext ([`Tiling`], CHEETAH's matrix product
//! encoding): per column group the key holder sends one ciphertext of `c0` only (`c1` expands from a seed) per
//! vector chunk and gets back one per row block, switched down to fewer primes; compare `m p k` OTs per
//! column for Gilboa.

use std::sync::Arc;

use rand_core::Rng;
use rayon::prelude::*;

use rand_chacha::ChaCha20Rng;

use super::cost;
use super::local::{matmul_local, random, sub};
use super::peer::Peer;
use super::rlwe::{self, Params, Product, PublicKey, STAT_SEC, SecretKey, TASK_FLOODS, TASK_FLOODS_LOG2, ZeroEnc};
use crate::context::{PartyContext, compute};
use crate::crypto::prg::Prg;
use crate::error::{Error, Result};
use crate::ring::Ring;

/// This party's lattice keys and the peer's public key, set up on first use.
pub struct HeState {
    pub(super) sk: SecretKey,
    pub(super) peer: PublicKey,
    pub(super) rng: Prg,
    plain: PlainCache,
    /// Coefficients (and slot masks) this party has flooded as evaluator so far in the task.
    pub(super) flooded: FloodBudget,
}

/// Coefficients (and masked slot values) a party has flooded in a task, against [`TASK_FLOODS`]: past it the
/// statistical distances of the floods could add up to more than `2^-STAT_SEC`, so the task fails instead.
#[derive(Default)]
pub(super) struct FloodBudget {
    spent: u64,
}

impl FloodBudget {
    /// Count `coefficients` more, before flooding them.
    pub(super) fn spend(&mut self, coefficients: usize) -> Result<()> {
        self.spent = self.spent.saturating_add(coefficients as u64);
        if self.spent > TASK_FLOODS {
            return Err(Error::Internal(format!(
                "this task would flood more than 2^{TASK_FLOODS_LOG2} RLWE coefficients, what its statistical \
                 security (2^-{STAT_SEC}) covers: split it into smaller tasks"
            )));
        }
        Ok(())
    }
}

/// Memory the evaluator may spend on cached plaintext polynomials.
const PLAIN_CACHE_BYTES: usize = 512 << 20;

/// Most plaintext polynomials a cut may make of one matrix (about 126 MB for FM64), so that several cuts of
/// one matrix stay in the cache together.
const CACHED_TILES: usize = 480;

/// CPU seconds of one 8192-point NTT over one prime (AVX2; FM64's size), the unit [`Tiling::columns`] counts
/// its work in.
const NTT_SECS: f64 = 20e-6;

/// The evaluator's plaintext polynomials (NTT form, with their norms) by matrix: SS-LR multiplies the same
/// batches every epoch, so each batch's matrix is encoded and transformed once and reused (the fixed data is
/// prepared once). Keyed by a BLAKE3 hash of the matrix and its shape, so a changed matrix can never hit a
/// stale entry; matrices past the memory budget are simply not kept.
#[derive(Default)]
struct PlainCache {
    polys: rustc_hash::FxHashMap<[u8; 32], Plaintexts>,
    bytes: usize,
}

/// A matrix's plaintext polynomials with their norms, shared between the cache and a running product.
type Plaintexts = Arc<Vec<(Vec<u64>, u128)>>;

impl PlainCache {
    /// The plaintexts of `a` (`m x p` by `tiling`), block after block and chunk after chunk within a block.
    fn get<R: Ring>(&mut self, params: &Params, tiling: Tiling, a: &[R]) -> Plaintexts {
        let mut hasher = blake3::Hasher::new();
        let shape = [tiling.m, tiling.p, tiling.cols, tiling.width, R::BITS as usize];
        hasher.update(&shape.map(|v| (v as u64).to_le_bytes()).concat());
        let mut raw = Vec::with_capacity(a.len() * R::BITS as usize / 8);
        for v in a {
            raw.extend_from_slice(&v.to_u128().to_le_bytes()[..R::BITS as usize / 8]);
        }
        let key: [u8; 32] = hasher.update(&raw).finalize().into();
        if let Some(polys) = self.polys.get(&key) {
            return polys.clone();
        }
        let polys: Vec<(Vec<u64>, u128)> = tiling
            .blocks()
            .flat_map(|block| (0..tiling.chunks()).map(move |c| (block.clone(), c)))
            .map(|(block, c)| params.plaintext(&tiling.plaintext(a, &block, c)))
            .collect();
        let polys = Arc::new(polys);
        let size = polys.iter().map(|(p, _)| p.len() * 8).sum::<usize>();
        if self.bytes + size <= PLAIN_CACHE_BYTES {
            self.bytes += size;
            self.polys.insert(key, polys.clone());
        }
        polys
    }
}

/// How an `m x p` matrix times a `p x q` matrix is cut (CHEETAH's matrix product encoding): vector chunks of
/// `cols` rows of `width` columns each in one polynomial (column `j`'s chunk from coefficient `j cols`), row
/// blocks of `rows` (row `i`'s entries reversed from coefficient `i cols width + cols - 1` down), so one
/// polynomial product holds `rows x width` inner products (`rows * cols * width <= N`). Several columns per
/// ciphertext cut the ciphertexts made, returned and decrypted; the polynomial products stay `m p q / N`.
#[derive(Clone, Copy)]
pub(super) struct Tiling {
    m: usize,
    p: usize,
    q: usize,
    cols: usize,
    rows: usize,
    width: usize,
}

impl Tiling {
    /// The cut of a matrix-vector product ([`Tiling::columns`] with one column).
    pub(super) fn new<R: Ring>(m: usize, p: usize) -> Tiling {
        Tiling::columns::<R>(m, p, 1)
    }

    /// The cut with the least estimated time for `R`'s parameters (both nodes compute it from the public
    /// shape): the ciphertexts' bytes on a link of [`cost::LINK_BYTES_PER_SEC`] plus their CPU, counted in
    /// one-prime NTTs: a fresh ciphertext (each chunk of each column group) about 6, a returned one (each row
    /// block of each group: re-randomizer, inverse transform, decryption) about 14, a polynomial product
    /// (pointwise over every prime, both halves) 1.5. Among cuts whose plaintext polynomials (`blocks x chunks`) stay within [`CACHED_TILES`], so they
    /// are transformed once per task; wide vectors with few rows then take
    /// narrower chunks and several columns per ciphertext, so that rows and columns share a returned block.
    pub(super) fn columns<R: Ring>(m: usize, p: usize, q: usize) -> Tiling {
        let params = rlwe::params::<R>();
        let n = params.n;
        let at = |cols: usize, width: usize| Tiling { m, p, q: q.max(1), cols, rows: n / (cols * width), width };
        if m == 0 || p == 0 {
            return at(1, 1);
        }
        let wide = (R::BITS / 64) as f64;
        let sent = residue_bytes(params.limbs() * n) as f64 / cost::LINK_BYTES_PER_SEC + 6.0 * NTT_SECS * wide;
        let returned =
            residue_bytes(params.returned_limbs() * n) as f64 / cost::LINK_BYTES_PER_SEC + 14.0 * NTT_SECS * wide;
        let secs = |t: &Tiling| {
            let (groups, chunks, blocks) = (t.groups() as f64, t.chunks() as f64, t.blocks_count() as f64);
            groups * (chunks * sent + blocks * returned + chunks * blocks * 1.5 * NTT_SECS * wide)
        };
        let candidates: Vec<Tiling> = (1..=q.clamp(1, 64))
            .flat_map(|width| {
                let least = p.div_ceil(n / width).max(1);
                (least..=least.saturating_mul(64).min(p)).map(move |chunks| (chunks, width))
            })
            .map(|(chunks, width)| at(p.div_ceil(chunks).clamp(1, n / width), width))
            .collect();
        let best = |ts: &mut dyn Iterator<Item = &Tiling>| ts.min_by(|a, b| secs(a).total_cmp(&secs(b))).copied();
        best(&mut candidates.iter().filter(|t| t.chunks() * t.blocks_count() <= CACHED_TILES))
            .or_else(|| best(&mut candidates.iter()))
            .unwrap_or_else(|| at(p.clamp(1, n), 1))
    }

    /// Ciphertexts sent, ciphertexts returned, and rows per returned block, per column group.
    pub(super) fn counts(&self) -> (usize, usize, usize) {
        (self.chunks(), self.blocks_count(), self.rows)
    }

    fn chunks(&self) -> usize {
        self.p.div_ceil(self.cols)
    }

    fn blocks_count(&self) -> usize {
        self.m.div_ceil(self.rows.max(1))
    }

    /// Column groups (ciphertexts per chunk) of `q` columns.
    fn groups(&self) -> usize {
        self.q.div_ceil(self.width)
    }

    fn blocks(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        (0..self.m).step_by(self.rows.max(1)).map(|r| r..(r + self.rows).min(self.m))
    }

    /// The coefficients holding the inner products of a block's `rows` rows with a group's `width` columns,
    /// column after column.
    fn positions(&self, rows: usize, width: usize) -> Vec<usize> {
        let (cols, stride) = (self.cols, self.cols * self.width);
        (0..width).flat_map(|j| (0..rows).map(move |i| i * stride + j * cols + cols - 1)).collect()
    }

    /// The plaintext polynomial of rows `block` and vector chunk `c` of `a` (row-major `m x p`).
    fn plaintext<R: Ring>(&self, a: &[R], block: &std::ops::Range<usize>, c: usize) -> Vec<(usize, R)> {
        let c0 = c * self.cols;
        let c1 = (c0 + self.cols).min(self.p);
        let stride = self.cols * self.width;
        let mut out = Vec::with_capacity(block.len() * (c1 - c0));
        for (i, r) in block.clone().enumerate() {
            for j in c0..c1 {
                out.push((i * stride + self.cols - 1 - (j - c0), a[r * self.p + j]));
            }
        }
        out
    }

    /// The message of chunk `c` of a group of columns (each `p` long): column `j`'s rows from `j cols`.
    fn chunk_message<R: Ring>(&self, group: &[Vec<R>], c: usize) -> Vec<R> {
        let (c0, c1) = (c * self.cols, ((c + 1) * self.cols).min(self.p));
        let mut out = vec![R::ZERO; self.cols * (group.len() - 1) + (c1 - c0)];
        for (j, col) in group.iter().enumerate() {
            out[j * self.cols..j * self.cols + (c1 - c0)].copy_from_slice(&col[c0..c1]);
        }
        out
    }
}

/// Ciphertext residues on the wire: [`rlwe::RESIDUE_BITS`] bits each, little-endian, one byte-aligned segment
/// per polynomial. Written through a 128-bit accumulator a whole word at a time; read with one unaligned
/// 64-bit load each (a residue plus its bit offset within a byte, 51 + 7 bits, fits one word).
pub(super) fn put_residues(out: &mut Vec<u8>, xs: &[u64]) {
    let start = out.len();
    out.resize(start + residue_bytes(xs.len()), 0);
    write_residues(&mut out[start..], xs);
}

/// [`put_residues`] into a segment of exactly [`residue_bytes`] bytes (so parallel tasks can fill disjoint
/// parts of one message). Whole little-endian words from an accumulator, no read-modify-write of overlapping
/// bytes: a full word is only written once its 64 bits have all been accumulated, so it stays in the segment.
pub(super) fn write_residues(buf: &mut [u8], xs: &[u64]) {
    let b = rlwe::RESIDUE_BITS;
    debug_assert_eq!(buf.len(), residue_bytes(xs.len()));
    let (mut acc, mut n, mut at) = (0u128, 0, 0);
    for x in xs {
        debug_assert!(*x < 1 << b, "residue {x} not reduced");
        acc |= (*x as u128) << n;
        n += b;
        if n >= 64 {
            buf[at..at + 8].copy_from_slice(&(acc as u64).to_le_bytes());
            (acc, n, at) = (acc >> 64, n - 64, at + 8);
        }
    }
    let tail = buf.len() - at;
    buf[at..].copy_from_slice(&acc.to_le_bytes()[..tail]);
}

/// The bytes of a segment of `n` residues.
pub(super) fn residue_bytes(n: usize) -> usize {
    (n * rlwe::RESIDUE_BITS as usize).div_ceil(8)
}

/// The residues of `primes.len()` polynomials of `per` coefficients each from their segment, polynomial `j`'s
/// modulo `primes[j]`; a residue not below its prime is refused (no honest peer sends one), naming its place.
pub(super) fn reduced_residues(bytes: &[u8], primes: &[u64], per: usize) -> std::result::Result<Vec<u64>, String> {
    let xs = residues(bytes, primes.len() * per);
    match xs.iter().enumerate().find(|(i, x)| **x >= primes[i / per]) {
        Some((i, x)) => Err(format!("residue {i} ({x}) is not below its prime {}", primes[i / per])),
        None => Ok(xs),
    }
}

/// `n` residues from their segment (which [`residue_bytes`] sized).
pub(super) fn residues(bytes: &[u8], n: usize) -> Vec<u64> {
    let b = rlwe::RESIDUE_BITS as usize;
    let mask = (1u64 << b) - 1;
    (0..n)
        .map(|i| {
            let at = i * b / 8;
            let word = match bytes.get(at..at + 8) {
                Some(w) => u64::from_le_bytes(w.try_into().unwrap_or([0; 8])),
                None => {
                    let mut w = [0u8; 8];
                    let tail = bytes.get(at..).unwrap_or(&[]);
                    w[..tail.len().min(8)].copy_from_slice(&tail[..tail.len().min(8)]);
                    u64::from_le_bytes(w)
                }
            };
            (word >> (i * b % 8)) & mask
        })
        .collect()
}

impl HeState {
    /// Generate this party's key for `params` and swap public keys with the peer under `tag` (once per
    /// device and parameter set).
    pub async fn setup(peer: &Peer<'_>, rng: &mut ChaCha20Rng, params: &'static Params, tag: &str) -> Result<HeState> {
        let mut key = [0u8; 16];
        rng.fill_bytes(&mut key);
        let mut sk = SecretKey::new(params, Prg::new(key, 0));
        let mut seed = [0u8; 16];
        rng.fill_bytes(&mut seed);
        let p0 = compute(|| sk.public_key(seed));
        let mut msg = seed.to_vec();
        put_residues(&mut msg, &p0);
        peer.send(tag, msg).await?;
        let len = params.limbs() * params.n;
        let bytes = peer.recv(tag, 16 + residue_bytes(len)).await?;
        let peer_seed: [u8; 16] = bytes[..16].try_into().unwrap_or_default();
        let pk = reduced_residues(&bytes[16..], &params.primes, params.n)
            .map_err(|e| peer.ctx.bad_message(&peer.name, tag, e))?;
        let peer_pk = PublicKey::new(params, pk, peer_seed);
        let mut rk = [0u8; 16];
        rng.fill_bytes(&mut rk);
        Ok(HeState {
            sk,
            peer: peer_pk,
            rng: Prg::new(rk, 0),
            plain: PlainCache::default(),
            flooded: FloodBudget::default(),
        })
    }

    /// Shares of `A_0 B_0` and `A_1 B_1` for shared `p x q` matrices `B_i` (row-major, as the results): each
    /// column is a matrix-vector product under the one tiling of its `A`, and a round carries as many columns
    /// as [`ROUND_CIPHERTEXTS`] allows, so the columns share one round trip and
    /// their ciphertexts are made and evaluated in parallel. A node without a matrix (`m p = 0`) sends none.
    pub async fn matmul_pair<R: Ring>(
        &mut self,
        peer: &Peer<'_>,
        seed: [u8; 16],
        mine: &[R],
        b: [&[R]; 2],
        dims: [(usize, usize, usize); 2],
    ) -> Result<[Vec<R>; 2]> {
        let me = peer.me;
        let dims = dims.map(|(m, p, q)| if m * p == 0 { (0, 0, q) } else { (m, p, q) });
        let tilings = dims.map(|(m, p, q)| Tiling::columns::<R>(m, p, q));
        let (own, theirs) = (tilings[me], tilings[1 - me]);
        let q = dims.iter().filter(|d| d.0 > 0).map(|d| d.2).max().unwrap_or(0);
        // A round carries whole column groups of both tilings.
        let unit = lcm(own.width, theirs.width);
        let per_unit = (own.chunks() * unit / own.width).max(theirs.chunks() * unit / theirs.width).max(1);
        let per_round = unit * (ROUND_CIPHERTEXTS / per_unit).max(1);
        let (mo, qo) = (dims[me].0, dims[me].2);
        // This party evaluates its own matrix's products: one flooded coefficient per result entry.
        self.flooded.spend(mo * qo)?;
        let (mt, qt) = (dims[1 - me].0, dims[1 - me].2);
        let (mut masks, mut decrypted) = (vec![R::ZERO; mo * qo], vec![R::ZERO; mt * qt]);
        let HeState { sk, peer: pk, rng, plain, .. } = self;
        for first in (0..q).step_by(per_round) {
            let cols = first..(first + per_round).min(q);
            let their_cols: Vec<Vec<R>> = if mt > 0 {
                cols.clone().map(|j| b[1 - me].iter().skip(j).step_by(qt).copied().collect()).collect()
            } else {
                Vec::new()
            };
            let (dec, mask) = tokio::try_join!(
                key_holder(peer.ctx, &peer.name, sk, theirs, (&their_cols, first), seed),
                evaluator(peer.ctx, &peer.name, (&*pk, &mut *rng, &mut *plain), own, mine, (cols.len(), first))
            )?;
            // Column-major per round (column after column, each its rows), into the row-major results.
            for (out, (v, rows, width)) in [(&mut decrypted, (dec, mt, qt)), (&mut masks, (mask, mo, qo))] {
                if rows == 0 {
                    continue;
                }
                for (k, col) in v.chunks(rows).enumerate() {
                    for (r, x) in col.iter().enumerate() {
                        out[r * width + first + k] = *x;
                    }
                }
            }
        }
        let local = matmul_local(mine, b[me], mo, dims[me].1, qo);
        let own_share = sub(&local, &masks);
        Ok(if me == 0 { [own_share, decrypted] } else { [decrypted, own_share] })
    }
}

fn lcm(a: usize, b: usize) -> usize {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    (a / gcd(a, b).max(1)) * b
}

/// Where each (column group, row block) of a round lands in its column-major results (`m` rows per column):
/// the group's columns and the block's rows, the answer being column after column.
fn scatter<R: Ring>(
    out: &mut [R],
    m: usize,
    (group, block): (std::ops::Range<usize>, std::ops::Range<usize>),
    v: &[R],
) {
    for (j, col) in group.enumerate() {
        out[col * m + block.start..col * m + block.end].copy_from_slice(&v[j * block.len()..(j + 1) * block.len()]);
    }
}

/// The (column group, row block) pairs of a round of `cols` columns, group after group.
fn group_blocks(tiling: &Tiling, cols: usize) -> Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let blocks: Vec<std::ops::Range<usize>> = tiling.blocks().collect();
    (0..cols)
        .step_by(tiling.width)
        .flat_map(|g| blocks.iter().map(move |b| (g..(g + tiling.width).min(cols), b.clone())))
        .collect()
}

/// Most fresh ciphertexts one round of [`HeState::matmul_pair`] carries: bounds the evaluator's expanded
/// ciphertexts (about 0.4 MB each for FM64) and the message size.
const ROUND_CIPHERTEXTS: usize = 256;

/// Encrypt this party's shares of the peer's columns (column `first + k` is `columns[k]`; chunk `c` of its
/// column group `g` on stream `(first / width + g) chunks + c`), then decrypt the peer's masked products: the
/// results column after column.
async fn key_holder<R: Ring>(
    ctx: &PartyContext,
    peer: &str,
    sk: &mut SecretKey,
    tiling: Tiling,
    (columns, first): (&[Vec<R>], usize),
    seed: [u8; 16],
) -> Result<Vec<R>> {
    let params = rlwe::params::<R>();
    let chunks = tiling.chunks();
    let msg = compute(|| {
        let parts: Vec<Vec<R>> = columns
            .chunks(tiling.width)
            .flat_map(|group| (0..chunks).map(move |c| tiling.chunk_message(group, c)))
            .collect();
        let parts: Vec<&[R]> = parts.iter().map(Vec::as_slice).collect();
        let cts = sk.encrypt_many(&parts, seed, (first / tiling.width * chunks) as u64);
        let mut msg = seed.to_vec();
        for ct in &cts {
            put_residues(&mut msg, ct);
        }
        msg
    });
    let tag = "mpc/he/enc";
    ctx.channel.send_bytes(peer, tag, msg).await.map_err(|e| ctx.link_error(e))?;
    let tag = "mpc/he/ret";
    let bytes = ctx.channel.recv_bytes(peer, tag).await.map_err(|e| ctx.link_error(e))?;
    if bytes.first() != Some(&1) {
        return Err(Error::Internal(format!("{peer} could not evaluate the RLWE product (see its error)")));
    }
    let l = params.returned_limbs();
    let segments = |values: usize| (residue_bytes(l * params.n), residue_bytes(l * values));
    // Each group's blocks in order: where each answer starts.
    let tasks = group_blocks(&tiling, columns.len());
    let mut starts = Vec::with_capacity(tasks.len());
    let mut at = 1;
    for (group, block) in &tasks {
        let (len1, len0) = segments(group.len() * block.len());
        starts.push(at);
        at += len1 + len0;
    }
    if bytes.len() != at {
        return Err(ctx.bad_message(peer, tag, format!("expected {at} bytes, got {}", bytes.len())));
    }
    let kept = &params.primes[..l];
    let sk = &*sk;
    let parts: Vec<Vec<R>> = compute(|| {
        starts
            .par_iter()
            .zip(&tasks)
            .map(|(&at, (group, block))| {
                let values = group.len() * block.len();
                let (len1, len0) = segments(values);
                let c1 = reduced_residues(&bytes[at..at + len1], kept, params.n)?;
                let c0 = reduced_residues(&bytes[at + len1..at + len1 + len0], kept, values)?;
                Ok(sk.decrypt::<R>(&c1, &c0, &tiling.positions(block.len(), group.len())))
            })
            .collect::<std::result::Result<_, String>>()
    })
    .map_err(|e| ctx.bad_message(peer, tag, e))?;
    let mut out = vec![R::ZERO; columns.len() * tiling.m];
    for (task, part) in tasks.into_iter().zip(parts) {
        scatter(&mut out, tiling.m, task, &part);
    }
    Ok(out)
}

/// Multiply the peer's ciphertexts (`cols` columns from column `first`) by this party's matrix, mask, flood and
/// return them; returns the masks, column after column.
async fn evaluator<R: Ring>(
    ctx: &PartyContext,
    peer: &str,
    (pk, rng, plain): (&PublicKey, &mut Prg, &mut PlainCache),
    tiling: Tiling,
    a: &[R],
    (cols, first): (usize, usize),
) -> Result<Vec<R>> {
    let params: &Params = rlwe::params::<R>();
    let l = params.limbs();
    let chunks = tiling.chunks();
    let tasks = group_blocks(&tiling, cols);
    // The re-randomizers, masks and flooding streams do not depend on the data: made while the peer's
    // ciphertexts are on their way. Each returned block's own stream, forked in order, so they are made in
    // parallel.
    let streams: Vec<Prg> = tasks.iter().map(|_| rng.fork()).collect();
    let prepared: Vec<(ZeroEnc, Vec<R>, Prg)> = compute(|| {
        streams
            .into_par_iter()
            .zip(&tasks)
            .map(|(mut rng, (g, b))| (ZeroEnc::new(params, pk, &mut rng), random(&mut rng, g.len() * b.len()), rng))
            .collect()
    });
    let tag = "mpc/he/enc";
    let bytes = ctx.channel.recv_bytes(peer, tag).await.map_err(|e| ctx.link_error(e))?;
    let len = l * params.n;
    let received = cols.div_ceil(tiling.width) * chunks;
    let expected = 16 + received * residue_bytes(len);
    if bytes.len() != expected {
        return Err(ctx.bad_message(peer, tag, format!("expected {expected} bytes, got {}", bytes.len())));
    }
    let evaluated = compute(|| -> Result<(Vec<u8>, Vec<R>)> {
        let seed: [u8; 16] = bytes[..16].try_into().unwrap_or_default();
        let stream0 = first / tiling.width * chunks;
        let cts = bytes[16..]
            .par_chunks_exact(residue_bytes(len))
            .enumerate()
            .map(|(i, part)| {
                let c0 = reduced_residues(part, &params.primes, params.n).map_err(|e| ctx.bad_message(peer, tag, e))?;
                Ok(rlwe::received(params, c0, seed, (stream0 + i) as u64))
            })
            .collect::<Result<Vec<(Vec<u64>, Vec<u64>)>>>()?;
        let plaintexts = plain.get(params, tiling, a);
        let block_index = |start: usize| start / tiling.rows.max(1);
        let answers = tasks
            .par_iter()
            .zip(prepared)
            .map(|((group, block), (zero, mask, mut rng))| {
                let mut prod = Product::new(zero);
                let g = group.start / tiling.width;
                let b = block_index(block.start);
                for ((c0, c1), (pt, norm)) in cts[g * chunks..(g + 1) * chunks].iter().zip(&plaintexts[b * chunks..]) {
                    prod.add(params, (pt, *norm), c0, c1);
                }
                let (c1, c0) = prod
                    .finish(params, &tiling.positions(block.len(), group.len()), &mask, &mut rng)
                    .map_err(|e| Error::Internal(format!("RLWE product: {e}")))?;
                let mut part = Vec::with_capacity(residue_bytes(c1.len()) + residue_bytes(c0.len()));
                put_residues(&mut part, &c1);
                put_residues(&mut part, &c0);
                Ok((part, mask))
            })
            .collect::<Result<Vec<(Vec<u8>, Vec<R>)>>>()?;
        let mut msg = vec![1u8];
        let mut masks = vec![R::ZERO; cols * tiling.m];
        for (task, (part, mask)) in tasks.iter().zip(answers) {
            msg.extend_from_slice(&part);
            scatter(&mut masks, tiling.m, task.clone(), &mask);
        }
        Ok((msg, masks))
    });
    let tag = "mpc/he/ret";
    // A refusal (status byte 0) still answers, so the key holder fails at once instead of waiting out the
    // link timeout.
    let (msg, masks) = match evaluated {
        Ok(done) => done,
        Err(e) => {
            let _ = ctx.channel.send_bytes(peer, tag, vec![0]).await;
            return Err(e);
        }
    };
    ctx.channel.send_bytes(peer, tag, msg).await.map_err(|e| ctx.link_error(e))?;
    Ok(masks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::prg::Words;

    /// The product of a block's plaintext and a group's chunk message, negacyclic mod `X^N + 1` over the
    /// integers, holds each row's inner product with each column's chunk at the tiling's positions.
    #[test]
    fn a_block_times_a_column_group_holds_every_inner_product_at_its_position() {
        let n = rlwe::params::<u64>().n;
        let mut rng = Prg::new([9; 16], 0);
        for (m, p, q) in [(40, 600, 16), (5, 300, 3), (12, 40, 7), (3, 9000, 2), (200, 50, 64)] {
            let t = Tiling::columns::<u64>(m, p, q);
            assert!(t.rows * t.cols * t.width <= n && t.rows > 0, "{m} x {p} x {q}");
            let a: Vec<u64> = (0..m * p).map(|_| rng.word() % 7).collect();
            let cols: Vec<Vec<u64>> = (0..q).map(|_| (0..p).map(|_| rng.word() % 5).collect()).collect();
            for (group, block) in group_blocks(&t, q) {
                let mut expected = vec![0i128; group.len() * block.len()];
                let mut got = vec![0i128; group.len() * block.len()];
                let positions = t.positions(block.len(), group.len());
                for c in 0..t.chunks() {
                    let message = t.chunk_message(&cols[group.clone()], c);
                    let mut prod = vec![0i128; n];
                    for (i, v) in t.plaintext(&a, &block, c) {
                        for (j, w) in message.iter().enumerate().filter(|(_, w)| **w != 0) {
                            let (k, x) = ((i + j) % n, v as i128 * *w as i128);
                            prod[k] += if i + j >= n { -x } else { x };
                        }
                    }
                    for (out, &at) in got.iter_mut().zip(&positions) {
                        *out += prod[at];
                    }
                }
                for (j, col) in group.clone().enumerate() {
                    for (i, r) in block.clone().enumerate() {
                        let dot: u64 = (0..p).map(|k| a[r * p + k] * cols[col][k]).sum();
                        expected[j * block.len() + i] = dot as i128;
                    }
                }
                assert_eq!(got, expected, "{m} x {p} x {q}: columns {group:?}, rows {block:?}");
            }
        }
    }

    #[test]
    fn residues_round_trip_in_packed_segments() {
        let mut rng = Prg::new([5; 16], 0);
        let mask = (1u64 << rlwe::RESIDUE_BITS) - 1;
        for n in [0, 1, 7, 8, 9, 1000, 1001] {
            let xs: Vec<u64> = (0..n).map(|i| if i % 3 == 0 { mask } else { rng.word() & mask }).collect();
            let mut out = vec![0xab];
            put_residues(&mut out, &xs);
            put_residues(&mut out, &xs[..n / 2]);
            assert_eq!(out.len(), 1 + residue_bytes(n) + residue_bytes(n / 2));
            assert_eq!(residues(&out[1..1 + residue_bytes(n)], n), xs);
            assert_eq!(residues(&out[1 + residue_bytes(n)..], n / 2), xs[..n / 2]);
        }
    }

    #[test]
    fn a_residue_not_below_its_prime_is_refused() {
        let primes = &rlwe::params::<u64>().primes;
        let per = 5;
        let reduced: Vec<u64> = (0..primes.len() * per).map(|i| primes[i / per] - 1 - i as u64).collect();
        let mut out = Vec::new();
        put_residues(&mut out, &reduced);
        assert_eq!(reduced_residues(&out, primes, per), Ok(reduced.clone()));
        // The second polynomial's third coefficient equal to its prime (it fits the wire's 51 bits).
        let mut bad = reduced;
        bad[per + 2] = primes[1];
        let mut out = Vec::new();
        put_residues(&mut out, &bad);
        let err = reduced_residues(&out, primes, per).expect_err("refused");
        assert!(err.contains(&format!("residue {}", per + 2)) && err.contains(&primes[1].to_string()), "{err}");
    }

    #[test]
    fn a_task_floods_at_most_its_budget() {
        let mut budget = FloodBudget::default();
        budget.spend(usize::try_from(TASK_FLOODS - 8).unwrap()).expect("within the budget");
        budget.spend(8).expect("up to the budget");
        let err = budget.spend(1).expect_err("past the budget").to_string();
        assert!(err.contains("2^32") && err.contains("2^-40"), "{err}");
    }
}
