/// The errors of a nested sequence of approximants at many consecutive ranks
/// from one blocked pass over the points (MATH.md §3):
///
///     L_c = L_0 + B[:, f ..< f + c] C[f ..< f + c, :],   X L_c^T = X L_0^T + a[:, f ..< f + c] B[:, f ..< f + c]^T
///
/// with `a = X C^T` of a `CandidateBasis`, `f = first` and `L_0 = U_0 V_0`
/// (rank `k_0`, possibly 0). Rows of the pre-activations are processed in
/// blocks that stay in cache: each block starts from `X L_0^T` (two small
/// GEMMs) and adds one pair after another, the row errors
/// `||act(z_i + b) - y_i||^2` taken at every requested count. So the errors
/// of every `c` cost one pass of `O(N m)` per pair in cache, instead of one
/// pass over an `N x m` matrix in memory per `c`.
///
/// The arithmetic is that of `squaredRowErrors` after rank updates (products
/// in `Scalar`, the pairs added in increasing order), so the rounding chain of
/// `ReluBoundProblem.certify` holds for every count.
struct NestedCurve<Scalar: BLASScalar> {
    let problem: ReluBoundProblem<Scalar>
    let basis: CandidateBasis<Scalar>
    /// First pair of the basis added.
    let first: Int
    /// Pairs added at each evaluated point (nondecreasing, `first + c <= basis.size`).
    let counts: [Int]
    /// `L_0` (nil: the zero matrix).
    let start: RankFactors<Scalar>?

    /// `B[:, first ..< first + counts.last]^T`, contiguous rows of length `m`.
    private let bt: [Scalar]
    /// Squared row errors, `counts.count x N` (row `q` for `counts[q]`), in
    /// `Scalar` as computed (exactly representable in `Double`).
    let errors: ScratchBuffer<Scalar>

    init(
        problem: ReluBoundProblem<Scalar>, basis: CandidateBasis<Scalar>, first: Int, counts: [Int],
        start: RankFactors<Scalar>?
    ) throws {
        precondition(zip(counts, counts.dropFirst()).allSatisfy { $0 <= $1 }, "counts must be nondecreasing")
        precondition(first + (counts.last ?? 0) <= basis.size, "counts exceed the basis")
        precondition(basis.a.rows == problem.count, "the basis has no projected points (factorsOnly)")
        self.problem = problem
        self.basis = basis
        self.first = first
        self.counts = counts
        self.start = start
        let m = basis.b.rows
        let pairs = counts.last ?? 0
        var bt = [Scalar](repeating: 0, count: max(1, pairs * m))
        for c in 0..<pairs { for j in 0..<m { bt[c * m + j] = basis.b[j, first + c] } }
        self.bt = bt
        errors = try ScratchBuffer(
            count: counts.count * problem.count,
            purpose: "the row errors of \(counts.count) ranks of a candidate family")
    }

    /// Rows per block: a block of pre-activations of about 192 KB (in cache).
    var blockRows: Int { max(4, min(256, 196_608 / max(1, problem.layer.outputs * MemoryLayout<Scalar>.stride))) }

    /// Fills the errors of rows `rows` (blocks of `blockRows`); `report` is
    /// called between blocks (it may throw to cancel). Disjoint row ranges
    /// may run on different threads.
    func fill(rows: Range<Int>, report: () throws -> Void) rethrows {
        let R = blockRows
        let m = problem.layer.outputs
        let z = Workspace<Scalar>(count: R * m)
        let projection = Workspace<Scalar>(count: R * max(1, start?.k ?? 0))
        var row = rows.lowerBound
        while row < rows.upperBound {
            try report()
            let count = min(R, rows.upperBound - row)
            startBlock(rows: row..<(row + count), z: z.base, projection: projection.base)
            pass(rows: row..<(row + count), z: z.base)
            row += count
        }
    }

    /// `z = X[rows] L_0^T` (without the bias).
    private func startBlock(rows: Range<Int>, z: UnsafeMutablePointer<Scalar>, projection: UnsafeMutablePointer<Scalar>)
    {
        let m = problem.layer.outputs
        let n = problem.layer.inputs
        let x = problem.x
        guard let start, start.k > 0 else {
            z.initialize(repeating: 0, count: rows.count * m)
            return
        }
        let k = start.k
        start.withPointers { u, v in
            Scalar.gemm(
                transA: false, transB: true, m: rows.count, n: k, k: n, alpha: 1,
                a: x.base + rows.lowerBound * x.rowStride, lda: x.rowStride, b: v, ldb: n, beta: 0,
                c: projection, ldc: k)
            Scalar.gemm(
                transA: false, transB: true, m: rows.count, n: m, k: k, alpha: 1, a: projection, lda: k,
                b: u, ldb: k, beta: 0, c: z, ldc: m)
        }
    }

    /// Adds the pairs to the block and records the errors at every count: the
    /// last pair before a count fused with its errors, the pairs before it by
    /// one GEMM.
    private func pass(rows: Range<Int>, z: UnsafeMutablePointer<Scalar>) {
        let m = problem.layer.outputs
        let N = problem.count
        let p = basis.size
        let out = errors.pointer
        // A count with no new pair still evaluates its errors through
        // `updateAndError` (coefficient 0); it reads this zero pair, never `bt`,
        // which may hold no pair at all.
        let zeroPair = [Scalar](repeating: 0, count: m)
        zeroPair.withUnsafeBufferPointer { zeroPair in
            problem.y.storage.withUnsafeBufferPointer { yAll in
                basis.a.storage.withUnsafeBufferPointer { a in
                    bt.withUnsafeBufferPointer { btp in
                        problem.layer.bias.withUnsafeBufferPointer { bias in
                            var added = 0
                            for (q, target) in counts.enumerated() {
                                // The pairs before the count's last, with no errors
                                // taken: one GEMM, `z += a[rows, gap] B[:, gap]^T`.
                                let gap = target - 1 - added
                                if gap > 0 {
                                    Scalar.gemm(
                                        transA: false, transB: false, m: rows.count, n: m, k: gap, alpha: 1,
                                        a: a.baseAddress! + rows.lowerBound * p + first + added, lda: p,
                                        b: btp.baseAddress! + added * m, ldb: m, beta: 1, c: z, ldc: m)
                                    added += gap
                                }
                                let last = added < target
                                let pair = last ? btp.baseAddress! + added * m : zeroPair.baseAddress!
                                for (r, i) in rows.enumerated() {
                                    let coefficient = last ? a[i * p + first + added] : 0
                                    out[q * N + i] = updateAndError(
                                        z + r * m, pair, coefficient, bias.baseAddress!,
                                        yAll.baseAddress! + i * m)
                                }
                                if last { added += 1 }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `z += c pair`, then `||act(z + b) - y||^2` in `Scalar` (`ActivationErrorKernel`).
    @inline(__always)
    private func updateAndError(
        _ z: UnsafeMutablePointer<Scalar>, _ pair: UnsafePointer<Scalar>, _ c: Scalar, _ b: UnsafePointer<Scalar>,
        _ y: UnsafePointer<Scalar>
    ) -> Scalar {
        ActivationErrorKernel.updateAndError(
            z, pair, c, b, y, m: problem.layer.outputs, slope: problem.layer.slope)
    }

    /// The group errors `e_g` at count index `q` (MATH.md §9).
    func groupErrors(_ q: Int) -> [Double] {
        let N = problem.count
        let rows = (0..<N).map { Double(errors.pointer[q * N + $0]) }
        return ReluBoundProblem<Scalar>.groupRoots(rows, groupSize: problem.groupSize)
    }

    /// The certified bound at every count (`ReluBoundProblem.certify` with
    /// the factors of `L_c`).
    func bounds() -> [Double] {
        // Double: the maximum as computed (no factors needed).
        guard Scalar.self != Double.self else { return counts.indices.map { groupErrors($0).reduce(0, max) } }
        let m = basis.b.rows
        let n = basis.c.columns
        let k0 = start?.k ?? 0
        // L_0 plus every pair used, once: the factors of each L_c are a prefix.
        let base = start ?? RankFactors(k: 0, m: m, n: n, u: [], v: [])
        let full = base.extended(by: basis, pairs: first..<(first + (counts.last ?? 0)))
        return full.withPointers { u, v in
            counts.indices.map { q in
                var e = groupErrors(q)
                return problem.certify(errors: &e, factors: FactorPointers(u: u, v: v, k: k0 + counts[q], ldu: full.k))
            }
        }
    }
}

extension NestedCurve {
    /// The certified bounds at `counts`, on the calling thread; a `Float`
    /// problem's pass runs on its `Double` copies (`passInDouble`).
    static func bounds(
        problem: ReluBoundProblem<Scalar>, basis: CandidateBasis<Scalar>, first: Int = 0, counts: [Int],
        start: RankFactors<Scalar>? = nil, report: () throws -> Void
    ) throws -> [Double] {
        guard !counts.isEmpty else { return [] }
        if let exact = try problem.passInDouble([basis]) {
            return try NestedCurve<Double>.bounds(
                problem: exact.problem, basis: exact.bases[0], first: first, counts: counts,
                start: start?.inDouble, report: report)
        }
        let curve = try NestedCurve(problem: problem, basis: basis, first: first, counts: counts, start: start)
        try curve.fill(rows: 0..<problem.count, report: report)
        return curve.bounds()
    }
}
