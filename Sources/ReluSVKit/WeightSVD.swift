/// The thin SVD of a weight `W`, computed once and shared by several bound
/// curves of the same layer (MATH.md §2–3: the truncation `W_k`, `t_k` and
/// `sigma_k`, and the extended candidates all read it), together with a
/// fingerprint of `W` so that a curve uses it only for that very `W`.
///
/// The factors are `thinSVD(of: W)` computed with OpenBLAS at one thread, the
/// values a curve computes for itself: a curve given them reports the same
/// bounds, bit for bit. Every bound stays the exact error of its factors
/// whatever the SVD; the fingerprint (shape and CRC-32 of the entries) keeps
/// `t_k` and `sigma_k` those of the `W` of the curve.
public struct WeightSVD<Scalar: BLASScalar> {
    public let svd: ThinSVD<Scalar>
    public let rows: Int
    public let columns: Int
    let checksum: UInt32

    /// Bytes `of(rows:columns:)` holds: `U` (`m x p`), `Vt` (`p x n`), the values, and the
    /// copy of `W` `?gesdd` overwrites, `p = min(m, n)`.
    public static func memoryBytes(rows m: Int, columns n: Int) -> Double {
        let p = Double(min(m, n))
        return (Double(m) * p + p * Double(n) + p + Double(m) * Double(n)) * Double(MemoryLayout<Scalar>.stride)
    }

    /// The SVD of `w` (checked for finite entries; `thinSVD(of:)` with OpenBLAS at one thread).
    public init(of w: MatrixView<Scalar>) throws {
        try checkWeight(rows: w.rows, columns: w.columns)
        svd = try BLASThreadLimit.singleThreaded { try thinSVD(of: w) }
        rows = w.rows
        columns = w.columns
        checksum = CRC32.checksum(of: w)
    }

    /// Whether these are the factors of `w` (the same shape and entries).
    public func belongs(to w: MatrixView<Scalar>) -> Bool {
        w.rows == rows && w.columns == columns && CRC32.checksum(of: w) == checksum
    }
}
