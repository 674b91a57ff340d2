import COpenBLAS

/// A floating-point type the engine computes in: `Float` or `Double`.
///
/// Every routine of the engine is generic over this protocol so that data is
/// processed in the caller's precision, without conversion or copies. The
/// requirements are thin wrappers of the matching single/double CBLAS and
/// LAPACKE routines, on row-major storage unless their name says
/// `ColumnMajor` (or they take no matrix).
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

    /// Householder QR `A = Q R` of the column-major `m x n` matrix `a`,
    /// `m >= n` (`?geqrf`, no layout copy): `R` in its upper triangle, the
    /// reflectors of `Q` below it and in `tau`. Returns LAPACK's `info`.
    static func geqrfColumnMajor(
        m: Int, n: Int, a: UnsafeMutablePointer<Self>, lda: Int, tau: UnsafeMutablePointer<Self>
    ) -> Int32

    /// `C <- Q C` for the column-major `m x n` matrix `c`, `Q` (`m x m`) from
    /// the `k` reflectors `geqrfColumnMajor` left in `a` and `tau` (`?ormqr`
    /// with `side = "L"`, `trans = "N"`). Returns LAPACK's `info`.
    static func ormqrLeftColumnMajor(
        m: Int, n: Int, k: Int, a: UnsafePointer<Self>, lda: Int, tau: UnsafePointer<Self>,
        c: UnsafeMutablePointer<Self>, ldc: Int
    ) -> Int32

    /// Householder bidiagonalisation `A = Q B P^T` of the column-major
    /// `m x n` matrix `a`, `m >= n` (`?gebrd`, its own workspace): the upper
    /// bidiagonal `B` in `d`, `e`, the reflectors in `a`, `tauq`, `taup`.
    /// Returns LAPACK's `info`.
    static func gebrdColumnMajor(
        m: Int, n: Int, a: UnsafeMutablePointer<Self>, lda: Int, d: UnsafeMutablePointer<Self>,
        e: UnsafeMutablePointer<Self>, tauq: UnsafeMutablePointer<Self>, taup: UnsafeMutablePointer<Self>
    ) -> Int32

    /// The singular values of the `n x n` upper bidiagonal matrix in `d`,
    /// `e` (both overwritten), descending into `d` (`?bdsdc` with
    /// `compq = "N"`). Returns LAPACK's `info`.
    static func bdsdcValues(n: Int, d: UnsafeMutablePointer<Self>, e: UnsafeMutablePointer<Self>) -> Int32

    /// The `count` largest singular values of the `n x n` upper bidiagonal
    /// matrix in `d`, `e` (which it may change: entries below its tolerance
    /// are set to zero) and their vectors (`?bdsvdx` with `range = "I"`,
    /// `il = 1`, `iu = count`: bisection and inverse iteration on its
    /// Golub-Kahan matrix): values descending in `s`; column `j` of the
    /// column-major `z` holds the left vector in rows `0..<n` and the right
    /// vector in rows `n..<2n`, `ldz = 2 n`. LAPACK widens the index range to
    /// an interval of values and writes every eigenpair of the `2n x 2n`
    /// Golub-Kahan matrix it finds there (a zero matrix: all of them) before
    /// it keeps `count`: `s` must hold `2 n + 1` entries and `z`
    /// `2 n x (2 n + 1)`. `found` receives how many pairs it returns.
    /// Returns LAPACK's `info`.
    static func bdsvdxLargest(
        n: Int, count: Int, d: UnsafeMutablePointer<Self>, e: UnsafeMutablePointer<Self>,
        s: UnsafeMutablePointer<Self>, z: UnsafeMutablePointer<Self>, found: UnsafeMutablePointer<Int32>
    ) -> Int32

    /// `C <- Q C` (`vect = "Q"`) or `C <- P C` (`vect = "P"`) for the
    /// column-major `m x n` matrix `c`, `Q` or `P` from the reflectors
    /// `gebrdColumnMajor` left in the `k`-column matrix `a` and `tau`
    /// (`?ormbr` with `side = "L"`, `trans = "N"`). Returns LAPACK's `info`.
    static func ormbrLeftColumnMajor(
        vect: UInt8, m: Int, n: Int, k: Int, a: UnsafePointer<Self>, lda: Int, tau: UnsafePointer<Self>,
        c: UnsafeMutablePointer<Self>, ldc: Int
    ) -> Int32

    /// `C = A^T A` (`trans`, `A` column-major `k x n`) or `C = A A^T` (`A`
    /// column-major `n x k`): the lower triangle of the column-major `n x n`
    /// matrix `c` (`?syrk`, `uplo = "L"`).
    static func syrkLowerColumnMajor(
        trans: Bool, n: Int, k: Int, a: UnsafePointer<Self>, lda: Int, c: UnsafeMutablePointer<Self>, ldc: Int)

    /// The Cholesky factor of the symmetric column-major `n x n` matrix `a`
    /// (its lower triangle read and overwritten; `?potrf`, `uplo = "L"`).
    /// Returns LAPACK's `info`: positive where `a` is not positive definite.
    static func potrfLowerColumnMajor(n: Int, a: UnsafeMutablePointer<Self>, lda: Int) -> Int32

    /// `A = Q T Q^T` of the symmetric column-major `n x n` matrix `a` (its
    /// lower triangle read, overwritten by the reflectors): the tridiagonal
    /// `T` in `d` (`n`) and `e` (`n - 1`), the reflectors' scalars in `tau`
    /// (`n - 1`; `?sytrd`, `uplo = "L"`, blocked). Returns LAPACK's `info`.
    static func sytrdLowerColumnMajor(
        n: Int, a: UnsafeMutablePointer<Self>, lda: Int, d: UnsafeMutablePointer<Self>,
        e: UnsafeMutablePointer<Self>, tau: UnsafeMutablePointer<Self>
    ) -> Int32

    /// Every eigenvalue of the symmetric tridiagonal `n x n` matrix in `d`,
    /// `e` (both overwritten), ascending into `d` (`?sterf`, root-free QR).
    /// Returns LAPACK's `info`.
    static func sterf(n: Int, d: UnsafeMutablePointer<Self>, e: UnsafeMutablePointer<Self>) -> Int32

    /// The `count` largest eigenvalues of the symmetric tridiagonal `n x n`
    /// matrix in `d`, `e` (`e` of `n` entries, the last workspace; both
    /// overwritten), ascending into `w`, and their eigenvectors in the
    /// columns of the column-major `n x count` matrix `z` (`?stemr` with
    /// `range = "I"`, `il = n - count + 1`, `iu = n`: MRRR, without the
    /// attempt at high relative accuracy, `tryrac = 0`: a Gram matrix's
    /// eigenvalues are known to absolute accuracy only, and with the attempt
    /// MRRR failed on the `1024 x 1024` Gram matrix of sparse data). `found`
    /// receives how many it returns. Returns LAPACK's `info`.
    static func stemrLargest(
        n: Int, count: Int, d: UnsafeMutablePointer<Self>, e: UnsafeMutablePointer<Self>,
        w: UnsafeMutablePointer<Self>, z: UnsafeMutablePointer<Self>, found: UnsafeMutablePointer<Int32>
    ) -> Int32

    /// Every eigenpair of the symmetric tridiagonal `n x n` matrix in `d`,
    /// `e` (both overwritten): the eigenvalues ascending into `d`, the unit
    /// eigenvectors into the columns of the column-major `n x n` matrix `z`
    /// (`?stedc` with `compz = "I"`, divide and conquer). Returns LAPACK's
    /// `info`.
    static func stedc(
        n: Int, d: UnsafeMutablePointer<Self>, e: UnsafeMutablePointer<Self>, z: UnsafeMutablePointer<Self>
    )
        -> Int32

    /// `C <- Q C` for the column-major `m x n` matrix `c`, `Q` from the
    /// reflectors `sytrdLowerColumnMajor` left in the `m x m` matrix `a` and
    /// `tau` (`?ormtr`, `side = "L"`, `uplo = "L"`, `trans = "N"`). Returns
    /// LAPACK's `info`.
    static func ormtrLowerColumnMajor(
        m: Int, n: Int, a: UnsafePointer<Self>, lda: Int, tau: UnsafePointer<Self>, c: UnsafeMutablePointer<Self>,
        ldc: Int
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

    public static func geqrfColumnMajor(
        m: Int, n: Int, a: UnsafeMutablePointer<Float>, lda: Int, tau: UnsafeMutablePointer<Float>
    ) -> Int32 {
        LAPACKE_sgeqrf(LAPACK_COL_MAJOR, Int32(m), Int32(n), a, Int32(lda), tau)
    }

    public static func ormqrLeftColumnMajor(
        m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, tau: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) -> Int32 {
        LAPACKE_sormqr(
            LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), CChar(UInt8(ascii: "N")), Int32(m), Int32(n), Int32(k),
            a, Int32(lda), tau, c, Int32(ldc))
    }

    public static func gebrdColumnMajor(
        m: Int, n: Int, a: UnsafeMutablePointer<Float>, lda: Int, d: UnsafeMutablePointer<Float>,
        e: UnsafeMutablePointer<Float>, tauq: UnsafeMutablePointer<Float>, taup: UnsafeMutablePointer<Float>
    ) -> Int32 {
        LAPACKE_sgebrd(LAPACK_COL_MAJOR, Int32(m), Int32(n), a, Int32(lda), d, e, tauq, taup)
    }

    public static func bdsdcValues(n: Int, d: UnsafeMutablePointer<Float>, e: UnsafeMutablePointer<Float>) -> Int32 {
        var (u, vt): (Float, Float) = (0, 0)
        return LAPACKE_sbdsdc(
            LAPACK_COL_MAJOR, CChar(UInt8(ascii: "U")), CChar(UInt8(ascii: "N")), Int32(n), d, e, &u, 1, &vt, 1,
            nil, nil)
    }

    public static func bdsvdxLargest(
        n: Int, count: Int, d: UnsafeMutablePointer<Float>, e: UnsafeMutablePointer<Float>,
        s: UnsafeMutablePointer<Float>, z: UnsafeMutablePointer<Float>, found: UnsafeMutablePointer<Int32>
    ) -> Int32 {
        var superb = [Int32](repeating: 0, count: 12 * max(n, 1))
        return LAPACKE_sbdsvdx(
            LAPACK_COL_MAJOR, CChar(UInt8(ascii: "U")), CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "I")),
            Int32(n), d, e, 0, 0, 1, Int32(count), found, s, z, Int32(2 * n), &superb)
    }

    public static func ormbrLeftColumnMajor(
        vect: UInt8, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, tau: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) -> Int32 {
        LAPACKE_sormbr(
            LAPACK_COL_MAJOR, CChar(bitPattern: vect), CChar(UInt8(ascii: "L")), CChar(UInt8(ascii: "N")),
            Int32(m), Int32(n), Int32(k), a, Int32(lda), tau, c, Int32(ldc))
    }

    public static func syrkLowerColumnMajor(
        trans: Bool, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_ssyrk(
            CblasColMajor, CblasLower, trans ? CblasTrans : CblasNoTrans, blasint(n), blasint(k), 1, a, blasint(lda),
            0, c, blasint(ldc))
    }

    public static func potrfLowerColumnMajor(n: Int, a: UnsafeMutablePointer<Float>, lda: Int) -> Int32 {
        LAPACKE_spotrf(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), Int32(n), a, Int32(lda))
    }

    public static func sytrdLowerColumnMajor(
        n: Int, a: UnsafeMutablePointer<Float>, lda: Int, d: UnsafeMutablePointer<Float>,
        e: UnsafeMutablePointer<Float>, tau: UnsafeMutablePointer<Float>
    ) -> Int32 {
        LAPACKE_ssytrd(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), Int32(n), a, Int32(lda), d, e, tau)
    }

    public static func sterf(n: Int, d: UnsafeMutablePointer<Float>, e: UnsafeMutablePointer<Float>) -> Int32 {
        LAPACKE_ssterf(Int32(n), d, e)
    }

    public static func stemrLargest(
        n: Int, count: Int, d: UnsafeMutablePointer<Float>, e: UnsafeMutablePointer<Float>,
        w: UnsafeMutablePointer<Float>, z: UnsafeMutablePointer<Float>, found: UnsafeMutablePointer<Int32>
    ) -> Int32 {
        var support = [Int32](repeating: 0, count: 2 * max(count, 1))
        var tryRelativeAccuracy: Int32 = 0
        return LAPACKE_sstemr(
            LAPACK_COL_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "I")), Int32(n), d, e, 0, 0,
            Int32(n - count + 1), Int32(n), found, w, z, Int32(max(n, 1)), Int32(count), &support,
            &tryRelativeAccuracy)
    }

    public static func stedc(
        n: Int, d: UnsafeMutablePointer<Float>, e: UnsafeMutablePointer<Float>, z: UnsafeMutablePointer<Float>
    ) -> Int32 {
        LAPACKE_sstedc(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "I")), Int32(n), d, e, z, Int32(max(n, 1)))
    }

    public static func ormtrLowerColumnMajor(
        m: Int, n: Int, a: UnsafePointer<Float>, lda: Int, tau: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
        ldc: Int
    ) -> Int32 {
        LAPACKE_sormtr(
            LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), CChar(UInt8(ascii: "L")), CChar(UInt8(ascii: "N")),
            Int32(m), Int32(n), a, Int32(lda), tau, c, Int32(ldc))
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

    public static func geqrfColumnMajor(
        m: Int, n: Int, a: UnsafeMutablePointer<Double>, lda: Int, tau: UnsafeMutablePointer<Double>
    ) -> Int32 {
        LAPACKE_dgeqrf(LAPACK_COL_MAJOR, Int32(m), Int32(n), a, Int32(lda), tau)
    }

    public static func ormqrLeftColumnMajor(
        m: Int, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int, tau: UnsafePointer<Double>,
        c: UnsafeMutablePointer<Double>, ldc: Int
    ) -> Int32 {
        LAPACKE_dormqr(
            LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), CChar(UInt8(ascii: "N")), Int32(m), Int32(n), Int32(k),
            a, Int32(lda), tau, c, Int32(ldc))
    }

    public static func gebrdColumnMajor(
        m: Int, n: Int, a: UnsafeMutablePointer<Double>, lda: Int, d: UnsafeMutablePointer<Double>,
        e: UnsafeMutablePointer<Double>, tauq: UnsafeMutablePointer<Double>, taup: UnsafeMutablePointer<Double>
    ) -> Int32 {
        LAPACKE_dgebrd(LAPACK_COL_MAJOR, Int32(m), Int32(n), a, Int32(lda), d, e, tauq, taup)
    }

    public static func bdsdcValues(n: Int, d: UnsafeMutablePointer<Double>, e: UnsafeMutablePointer<Double>) -> Int32 {
        var (u, vt): (Double, Double) = (0, 0)
        return LAPACKE_dbdsdc(
            LAPACK_COL_MAJOR, CChar(UInt8(ascii: "U")), CChar(UInt8(ascii: "N")), Int32(n), d, e, &u, 1, &vt, 1,
            nil, nil)
    }

    public static func bdsvdxLargest(
        n: Int, count: Int, d: UnsafeMutablePointer<Double>, e: UnsafeMutablePointer<Double>,
        s: UnsafeMutablePointer<Double>, z: UnsafeMutablePointer<Double>, found: UnsafeMutablePointer<Int32>
    ) -> Int32 {
        var superb = [Int32](repeating: 0, count: 12 * max(n, 1))
        return LAPACKE_dbdsvdx(
            LAPACK_COL_MAJOR, CChar(UInt8(ascii: "U")), CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "I")),
            Int32(n), d, e, 0, 0, 1, Int32(count), found, s, z, Int32(2 * n), &superb)
    }

    public static func ormbrLeftColumnMajor(
        vect: UInt8, m: Int, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int, tau: UnsafePointer<Double>,
        c: UnsafeMutablePointer<Double>, ldc: Int
    ) -> Int32 {
        LAPACKE_dormbr(
            LAPACK_COL_MAJOR, CChar(bitPattern: vect), CChar(UInt8(ascii: "L")), CChar(UInt8(ascii: "N")),
            Int32(m), Int32(n), Int32(k), a, Int32(lda), tau, c, Int32(ldc))
    }

    public static func syrkLowerColumnMajor(
        trans: Bool, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        cblas_dsyrk(
            CblasColMajor, CblasLower, trans ? CblasTrans : CblasNoTrans, blasint(n), blasint(k), 1, a, blasint(lda),
            0, c, blasint(ldc))
    }

    public static func potrfLowerColumnMajor(n: Int, a: UnsafeMutablePointer<Double>, lda: Int) -> Int32 {
        LAPACKE_dpotrf(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), Int32(n), a, Int32(lda))
    }

    public static func sytrdLowerColumnMajor(
        n: Int, a: UnsafeMutablePointer<Double>, lda: Int, d: UnsafeMutablePointer<Double>,
        e: UnsafeMutablePointer<Double>, tau: UnsafeMutablePointer<Double>
    ) -> Int32 {
        LAPACKE_dsytrd(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), Int32(n), a, Int32(lda), d, e, tau)
    }

    public static func sterf(n: Int, d: UnsafeMutablePointer<Double>, e: UnsafeMutablePointer<Double>) -> Int32 {
        LAPACKE_dsterf(Int32(n), d, e)
    }

    public static func stemrLargest(
        n: Int, count: Int, d: UnsafeMutablePointer<Double>, e: UnsafeMutablePointer<Double>,
        w: UnsafeMutablePointer<Double>, z: UnsafeMutablePointer<Double>, found: UnsafeMutablePointer<Int32>
    ) -> Int32 {
        var support = [Int32](repeating: 0, count: 2 * max(count, 1))
        var tryRelativeAccuracy: Int32 = 0
        return LAPACKE_dstemr(
            LAPACK_COL_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "I")), Int32(n), d, e, 0, 0,
            Int32(n - count + 1), Int32(n), found, w, z, Int32(max(n, 1)), Int32(count), &support,
            &tryRelativeAccuracy)
    }

    public static func stedc(
        n: Int, d: UnsafeMutablePointer<Double>, e: UnsafeMutablePointer<Double>, z: UnsafeMutablePointer<Double>
    ) -> Int32 {
        LAPACKE_dstedc(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "I")), Int32(n), d, e, z, Int32(max(n, 1)))
    }

    public static func ormtrLowerColumnMajor(
        m: Int, n: Int, a: UnsafePointer<Double>, lda: Int, tau: UnsafePointer<Double>, c: UnsafeMutablePointer<Double>,
        ldc: Int
    ) -> Int32 {
        LAPACKE_dormtr(
            LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), CChar(UInt8(ascii: "L")), CChar(UInt8(ascii: "N")),
            Int32(m), Int32(n), a, Int32(lda), tau, c, Int32(ldc))
    }
}
