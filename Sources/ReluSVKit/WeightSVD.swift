/// The thin SVD of a weight `W`, computed once and shared by several bound
/// curves of the same layer (MATH.md §2–3: the truncation `W_k`, `t_k` and
/// `sigma_k`, and the extended candidates all read it), together with a
/// fingerprint of `W` so that a curve uses it only for that very `W`.
///
/// The factors are `thinSVD(of: W)` computed with OpenBLAS at one thread, the
/// values a curve computes for itself: a curve given them reports the same
/// bounds, bit for bit. With fewer pairs of vectors (`init(of:vectors:)`) the
/// values are all there and a curve reads the pairs of its `k` only; it then
/// reports bounds of factors that agree with its own to rounding. Every bound stays the exact error of its factors
/// whatever the SVD; the fingerprint (the shape and a 64-bit hash of the
/// entries' bits, `fingerprint(of:)`) keeps `t_k` and `sigma_k` those of the
/// `W` of the curve.
public struct WeightSVD<Scalar: BLASScalar> {
    public let svd: ThinSVD<Scalar>
    public let rows: Int
    public let columns: Int
    let hash: UInt64

    /// Bytes the SVD of an `m x n` matrix needs with `count` pairs of vectors,
    /// `p = min(m, n)`. All pairs (`thinSVD(of:)`): `U` (`m x p`), `Vt`
    /// (`p x n`), the values and the copy of `W` `?gesdd` overwrites. Fewer
    /// (`leadingSVD(of:vectors:)`): the tall copy of `W` (which `?gebrd`
    /// reduces, or its `R`, `p x p`), `?bdsvdx`'s `2p x (2p + 1)`
    /// vectors, the pairs before and after their lifting, `U` and `Vt` of
    /// `count` pairs; and at least the former, which it falls back to.
    static func memoryBytes(rows m: Int, columns n: Int, vectors count: Int) -> Double {
        let (rows, columns) = (Double(m), Double(n))
        let p = min(rows, columns)
        let full = rows * p + p * columns + p + rows * columns
        let c = Double(min(count, min(m, n)))
        guard c < p else { return full * Double(MemoryLayout<Scalar>.stride) }
        let tall = max(rows, columns)
        let leading = rows * columns + p * p + 2 * p * (2 * p + 1) + c * (2 * tall + p + rows + columns) + 10 * p
        return max(full, leading) * Double(MemoryLayout<Scalar>.stride)
    }

    /// The SVD of `w` with OpenBLAS at one thread, its memory checked against
    /// the limit first: all pairs (`thinSVD(of:)`, which checks the entries),
    /// or for `vectors < min(m, n)` every value and the vectors of the
    /// `vectors` largest only (`leadingSVD(of:vectors:)`), enough for curves
    /// whose `k` stay at or below `vectors`; there a `tolerance` that
    /// `GramSpectrum` serves lets the values and pairs come from the Gram
    /// matrix where it resolves them (`leadingSVD(of:vectors:tolerance:)`).
    public init(of w: MatrixView<Scalar>, vectors: Int? = nil, tolerance: Double = 0) throws {
        let count = min(vectors ?? Int.max, min(w.rows, w.columns))
        try MemoryBudget.require(
            bytes: Self.memoryBytes(rows: w.rows, columns: w.columns, vectors: count), for: "the SVD of W")
        svd = try BLASThreadLimit.singleThreaded {
            count < min(w.rows, w.columns)
                ? try leadingSVD(of: w, vectors: count, tolerance: tolerance) : try thinSVD(of: w)
        }
        rows = w.rows
        columns = w.columns
        hash = Self.fingerprint(of: w)
    }

    /// The pairs of vectors held: `min(m, n)`, or fewer (`init(of:vectors:)`).
    public var vectors: Int { svd.u.columns }

    /// Whether these are the factors of `w` (the same shape and entries).
    public func belongs(to w: MatrixView<Scalar>) -> Bool {
        w.rows == rows && w.columns == columns && Self.fingerprint(of: w) == hash
    }

    /// A 64-bit hash of the entries' bits, row by row (whatever the row
    /// stride): multiply-xorshift over 64-bit words, a few cycles per word,
    /// so that the check costs little beside the curve (a byte-wise CRC-32
    /// of a `960 x 8640` kernel matrix took longer than its blocks' SVD).
    /// Not a cryptographic hash: it tells a changed `W` from the original,
    /// and a crafted collision could only mislabel `t_k` and `sigma_k`,
    /// never a bound.
    static func fingerprint(of w: MatrixView<Scalar>) -> UInt64 {
        var h: UInt64 = 0x243F_6A88_85A3_08D3
        let bytes = w.columns * MemoryLayout<Scalar>.stride
        for i in 0..<w.rows {
            let row = UnsafeRawPointer(w.row(i))
            var offset = 0
            while offset + 8 <= bytes {
                h = (h ^ row.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* 0x9E37_79B9_7F4A_7C15
                h ^= h >> 29
                offset += 8
            }
            if offset < bytes {  // a float32 row of odd length: its last four bytes
                h = (h ^ UInt64(row.loadUnaligned(fromByteOffset: offset, as: UInt32.self))) &* 0x9E37_79B9_7F4A_7C15
                h ^= h >> 29
            }
        }
        return h
    }
}
