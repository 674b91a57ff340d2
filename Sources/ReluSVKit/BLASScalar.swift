import COpenBLAS

/// A floating-point type the engine computes in: `Float` or `Double`.
///
/// Every routine of the engine is generic over this protocol so that data is
/// processed in the caller's precision, without conversion or copies. The
/// requirements are thin wrappers of the matching single/double CBLAS and
/// LAPACKE routines, all on row-major storage.
public protocol BLASScalar: BinaryFloatingPoint & Sendable where Self.RawSignificand: FixedWidthInteger {
    /// `C = alpha * op(A) * op(B) + beta * C` (row-major `?gemm`).
    static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Self, a: UnsafePointer<Self>, lda: Int,
        b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)

    /// Divide-and-conquer SVD of the row-major `m x n` matrix `a` (overwritten).
    ///
    /// `jobz` is `"N"` (values only), `"S"` (thin factors) as in LAPACK `?gesdd`.
    /// Returns LAPACK's `info` (0 on success).
    static func gesdd(
        jobz: UInt8, m: Int, n: Int, a: UnsafeMutablePointer<Self>, lda: Int,
        s: UnsafeMutablePointer<Self>, u: UnsafeMutablePointer<Self>?, ldu: Int,
        vt: UnsafeMutablePointer<Self>?, ldvt: Int
    ) -> Int32

    /// Householder QR of the row-major `m x n` matrix `a` (`?geqrf`): `R` in
    /// the upper triangle of `a`. Returns LAPACK's `info`.
    static func geqrf(m: Int, n: Int, a: UnsafeMutablePointer<Self>, lda: Int, tau: UnsafeMutablePointer<Self>) -> Int32

    /// `C = A^T A` for the row-major `k x n` matrix `a`: the upper triangle of
    /// the row-major `n x n` matrix `c` (`?syrk`, half the work of a GEMM).
    static func gramUpper(n: Int, k: Int, a: UnsafePointer<Self>, lda: Int, c: UnsafeMutablePointer<Self>, ldc: Int)

    /// Eigenvalues (ascending, into `w`) and eigenvectors of the symmetric
    /// row-major `n x n` matrix `a` (its upper triangle read; `?syevd`, divide
    /// and conquer): on return column `j` of `a` is the eigenvector of `w[j]`.
    /// Returns LAPACK's `info`.
    static func syevd(n: Int, a: UnsafeMutablePointer<Self>, lda: Int, w: UnsafeMutablePointer<Self>) -> Int32

    /// The workspace (elements) `?gesdd` with `jobz = "S"` asks for on an
    /// `m x n` matrix (its workspace query); nil when the query fails.
    static func gesddWorkspace(m: Int, n: Int) -> Int?

    /// Householder bidiagonalisation `A = Q B P^T` of the row-major `m x n`
    /// matrix `a`, `m >= n` (`?gebrd` with the workspace `work` of `lwork`
    /// elements, whose size sets its blocking): the upper bidiagonal `B` in
    /// `d`, `e`, the reflectors of `Q` and `P` in `a`, `tauq` and `taup`.
    /// Returns LAPACK's `info`.
    static func gebrd(
        m: Int, n: Int, a: UnsafeMutablePointer<Self>, lda: Int, d: UnsafeMutablePointer<Self>,
        e: UnsafeMutablePointer<Self>, tauq: UnsafeMutablePointer<Self>, taup: UnsafeMutablePointer<Self>,
        work: UnsafeMutablePointer<Self>, lwork: Int
    ) -> Int32

    /// Divide-and-conquer SVD `B = U_B diag(d) VT_B` of the `n x n` upper
    /// bidiagonal matrix in `d`, `e` (`?bdsdc` with `compq = "I"`, the
    /// workspace `work` of at least `3 n^2 + 4 n` elements and `iwork` of
    /// `8 n`): the values descending in `d`, the row-major `n x n` factors in
    /// `u`, `vt`. Returns LAPACK's `info`.
    static func bdsdc(
        n: Int, d: UnsafeMutablePointer<Self>, e: UnsafeMutablePointer<Self>, u: UnsafeMutablePointer<Self>,
        ldu: Int, vt: UnsafeMutablePointer<Self>, ldvt: Int, work: UnsafeMutablePointer<Self>,
        iwork: UnsafeMutablePointer<Int32>
    ) -> Int32

    /// `C <- C P^T` for the row-major `m x n` matrix `c`, `P` from the
    /// reflectors `?gebrd` left in the first `k` rows of `a` and `taup`
    /// (`?ormbr` with `vect = "P"`, `side = "R"`, `trans = "T"`, the
    /// workspace `work` of `lwork` elements, whose size sets its blocking).
    /// Returns LAPACK's `info`.
    static func ormbrRightPT(
        m: Int, n: Int, k: Int, a: UnsafePointer<Self>, lda: Int, taup: UnsafePointer<Self>,
        c: UnsafeMutablePointer<Self>, ldc: Int, work: UnsafeMutablePointer<Self>, lwork: Int
    ) -> Int32
}

extension Float: BLASScalar {
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
            beta, c, blasint(ldc))
    }

    public static func gesdd(
        jobz: UInt8, m: Int, n: Int, a: UnsafeMutablePointer<Float>, lda: Int,
        s: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>?, ldu: Int,
        vt: UnsafeMutablePointer<Float>?, ldvt: Int
    ) -> Int32 {
        LAPACKE_sgesdd(
            LAPACK_ROW_MAJOR, CChar(bitPattern: jobz), Int32(m), Int32(n), a, Int32(lda),
            s, u, Int32(ldu), vt, Int32(ldvt))
    }

    public static func geqrf(m: Int, n: Int, a: UnsafeMutablePointer<Float>, lda: Int, tau: UnsafeMutablePointer<Float>)
        -> Int32
    {
        LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, Int32(m), Int32(n), a, Int32(lda), tau)
    }

    public static func gramUpper(
        n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_ssyrk(
            CblasRowMajor, CblasUpper, CblasTrans, blasint(n), blasint(k), 1, a, blasint(lda), 0, c, blasint(ldc))
    }

    public static func syevd(n: Int, a: UnsafeMutablePointer<Float>, lda: Int, w: UnsafeMutablePointer<Float>) -> Int32
    {
        LAPACKE_ssyevd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "U")), Int32(n), a, Int32(lda), w)
    }

    public static func gesddWorkspace(m: Int, n: Int) -> Int? {
        var size: Float = 0
        var (a, s, u, vt): (Float, Float, Float, Float) = (0, 0, 0, 0)
        var iwork: Int32 = 0
        let info = LAPACKE_sgesdd_work(
            LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "S")), Int32(m), Int32(n), &a, Int32(max(n, 1)), &s, &u,
            Int32(max(min(m, n), 1)), &vt, Int32(max(n, 1)), &size, -1, &iwork)
        return info == 0 ? Int(size) : nil
    }

    public static func gebrd(
        m: Int, n: Int, a: UnsafeMutablePointer<Float>, lda: Int, d: UnsafeMutablePointer<Float>,
        e: UnsafeMutablePointer<Float>, tauq: UnsafeMutablePointer<Float>, taup: UnsafeMutablePointer<Float>,
        work: UnsafeMutablePointer<Float>, lwork: Int
    ) -> Int32 {
        LAPACKE_sgebrd_work(LAPACK_ROW_MAJOR, Int32(m), Int32(n), a, Int32(lda), d, e, tauq, taup, work, Int32(lwork))
    }

    public static func bdsdc(
        n: Int, d: UnsafeMutablePointer<Float>, e: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>,
        ldu: Int, vt: UnsafeMutablePointer<Float>, ldvt: Int, work: UnsafeMutablePointer<Float>,
        iwork: UnsafeMutablePointer<Int32>
    ) -> Int32 {
        LAPACKE_sbdsdc_work(
            LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "U")), CChar(UInt8(ascii: "I")), Int32(n), d, e, u, Int32(ldu),
            vt, Int32(ldvt), nil, nil, work, iwork)
    }

    public static func ormbrRightPT(
        m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, taup: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, ldc: Int, work: UnsafeMutablePointer<Float>, lwork: Int
    ) -> Int32 {
        LAPACKE_sormbr_work(
            LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "P")), CChar(UInt8(ascii: "R")), CChar(UInt8(ascii: "T")),
            Int32(m), Int32(n), Int32(k), a, Int32(lda), taup, c, Int32(ldc), work, Int32(lwork))
    }

}

extension Double: BLASScalar {
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Double, a: UnsafePointer<Double>, lda: Int,
        b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        cblas_dgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
            beta, c, blasint(ldc))
    }

    public static func gesdd(
        jobz: UInt8, m: Int, n: Int, a: UnsafeMutablePointer<Double>, lda: Int,
        s: UnsafeMutablePointer<Double>, u: UnsafeMutablePointer<Double>?, ldu: Int,
        vt: UnsafeMutablePointer<Double>?, ldvt: Int
    ) -> Int32 {
        LAPACKE_dgesdd(
            LAPACK_ROW_MAJOR, CChar(bitPattern: jobz), Int32(m), Int32(n), a, Int32(lda),
            s, u, Int32(ldu), vt, Int32(ldvt))
    }

    public static func geqrf(
        m: Int, n: Int, a: UnsafeMutablePointer<Double>, lda: Int, tau: UnsafeMutablePointer<Double>
    ) -> Int32 {
        LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, Int32(m), Int32(n), a, Int32(lda), tau)
    }

    public static func gramUpper(
        n: Int, k: Int, a: UnsafePointer<Double>, lda: Int, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        cblas_dsyrk(
            CblasRowMajor, CblasUpper, CblasTrans, blasint(n), blasint(k), 1, a, blasint(lda), 0, c, blasint(ldc))
    }

    public static func syevd(n: Int, a: UnsafeMutablePointer<Double>, lda: Int, w: UnsafeMutablePointer<Double>)
        -> Int32
    {
        LAPACKE_dsyevd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "U")), Int32(n), a, Int32(lda), w)
    }

    public static func gesddWorkspace(m: Int, n: Int) -> Int? {
        var size: Double = 0
        var (a, s, u, vt): (Double, Double, Double, Double) = (0, 0, 0, 0)
        var iwork: Int32 = 0
        let info = LAPACKE_dgesdd_work(
            LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "S")), Int32(m), Int32(n), &a, Int32(max(n, 1)), &s, &u,
            Int32(max(min(m, n), 1)), &vt, Int32(max(n, 1)), &size, -1, &iwork)
        return info == 0 ? Int(size) : nil
    }

    public static func gebrd(
        m: Int, n: Int, a: UnsafeMutablePointer<Double>, lda: Int, d: UnsafeMutablePointer<Double>,
        e: UnsafeMutablePointer<Double>, tauq: UnsafeMutablePointer<Double>, taup: UnsafeMutablePointer<Double>,
        work: UnsafeMutablePointer<Double>, lwork: Int
    ) -> Int32 {
        LAPACKE_dgebrd_work(LAPACK_ROW_MAJOR, Int32(m), Int32(n), a, Int32(lda), d, e, tauq, taup, work, Int32(lwork))
    }

    public static func bdsdc(
        n: Int, d: UnsafeMutablePointer<Double>, e: UnsafeMutablePointer<Double>, u: UnsafeMutablePointer<Double>,
        ldu: Int, vt: UnsafeMutablePointer<Double>, ldvt: Int, work: UnsafeMutablePointer<Double>,
        iwork: UnsafeMutablePointer<Int32>
    ) -> Int32 {
        LAPACKE_dbdsdc_work(
            LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "U")), CChar(UInt8(ascii: "I")), Int32(n), d, e, u, Int32(ldu),
            vt, Int32(ldvt), nil, nil, work, iwork)
    }

    public static func ormbrRightPT(
        m: Int, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int, taup: UnsafePointer<Double>,
        c: UnsafeMutablePointer<Double>, ldc: Int, work: UnsafeMutablePointer<Double>, lwork: Int
    ) -> Int32 {
        LAPACKE_dormbr_work(
            LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "P")), CChar(UInt8(ascii: "R")), CChar(UInt8(ascii: "T")),
            Int32(m), Int32(n), Int32(k), a, Int32(lda), taup, c, Int32(ldc), work, Int32(lwork))
    }

}
