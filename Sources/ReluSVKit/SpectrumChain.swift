/// A candidate of the chain: its certified bound and, when it came from a
/// fit or an extension, its pre-activations (for cheap extensions).
struct ChainBest<Scalar: BLASScalar> {
    var factors: RankFactors<Scalar>
    var bound: Double
    var source: BoundSource
    /// `X L^T` (`N x m`) when kept (fits and extensions).
    var z: Matrix<Scalar>?
}

/// One contiguous chain of `k`, processed in increasing order (MATH.md §3):
/// at each `k` the best family candidate (computed beforehand), the previous
/// best extended by the next singular pairs of `W`, the previous best itself,
/// and at fitted `k` a fit from the cold start (the best family candidate)
/// and one from the warm start (the extension), every result certified.
struct SpectrumChain<Scalar: BLASScalar> {
    let problem: ReluBoundProblem<Scalar>
    /// `bases[0]` is the truncated SVD.
    let bases: [CandidateBasis<Scalar>]
    /// Certified bound of every family at every requested `k`.
    let familyBounds: [Int: [Double]]
    let svd: ThinSVD<Scalar>
    let plan: SpectrumPlan
    /// The weighted candidates (`WeightedRegression`) by `k`, where evaluated.
    var weighted: [Int: ChainBest<Scalar>] = [:]

    func run(
        _ chain: [Int], deadline: Double, shared: SharedProgress, report: () throws -> Void
    ) throws -> [Int: (SpectrumEntry, RankFactors<Scalar>?)] {
        var out: [Int: (SpectrumEntry, RankFactors<Scalar>?)] = [:]
        var best: ChainBest<Scalar>?
        var remainingCost = chain.reduce(0.0) { $0 + plan.cost($1) }
        for k in chain {
            let started = now()
            try report()
            let family = familyBounds[k]!
            let index = family.indices.min { family[$0] < family[$1] }!
            var result = ChainBest(factors: bases[index].factors(rank: min(k, bases[index].size)), bound: family[index],
                                   source: k == 0 ? .exact : bases[index].source, z: nil)
            var entry = SpectrumEntry(k: k, sigma: Double(svd.s[k]), truncationBound: family[0], bound: 0,
                                      source: .svd, steps: 0, seconds: 0)
            let extended = best.flatMap { extend($0, to: k) }
            if let extended, extended.bound < result.bound { result = extended }
            if plan.fitted(k) {
                let share = plan.cost(k) / max(remainingCost, 1)
                let fitDeadline = deadline.isFinite ? started + (deadline - started) * share : .infinity
                var reported = 0
                let starts = startCandidates(cold: result.source == .extended ? nil : result, best: best, k: k)
                // The warm fit: where its start is near the cold result, or the
                // cold fit did not get below the previous k (a plateau otherwise).
                for (index, start) in starts.prefix(plan.starts).enumerated()
                where index == 0 || start.bound <= result.bound * (1 + plan.settings.warmFitSlack)
                    || result.bound >= best?.bound ?? .infinity {
                    let (fitted, steps) = try fit(from: start, deadline: fitDeadline) { step in
                        shared.add(entry.steps + step - reported)
                        reported = entry.steps + step
                        try report()
                    }
                    entry.steps += steps
                    if fitted.bound < result.bound { result = fitted }
                }
                shared.add(plan.units(k) - 1 - reported)
            }
            // A candidate, not a start: fits from it ended higher on the suite.
            if let w = weighted[k], w.bound < result.bound { result = w }
            if let previous = best, previous.bound <= result.bound {
                entry.bound = previous.bound
                entry.source = .previousK
                out[k] = (entry, plan.settings.keepFactors ? previous.factors : nil)
            } else {
                if result.z == nil, result.source == .fit || result.source == .refine {
                    result.z = preactivation(of: result.factors)
                }
                entry.bound = result.bound
                entry.source = result.source
                best = result
                out[k] = (entry, plan.settings.keepFactors ? result.factors : nil)
            }
            if entry.bound == 0 { entry.source = .zero; out[k]!.0 = entry }
            out[k]!.0.seconds = now() - started
            remainingCost -= plan.cost(k)
            shared.add(1)
        }
        return out
    }

    /// The previous best plus the singular pairs `best.k ..< k` of `W`,
    /// certified; nil when it is a family candidate (its extension is
    /// evaluated only as a warm start) or nothing is added.
    func extend(_ best: ChainBest<Scalar>, to k: Int) -> ChainBest<Scalar>? {
        guard let z = best.z, best.factors.k < k, k <= bases[0].size else { return nil }
        let pairs = best.factors.k..<k
        let factors = best.factors.extended(by: bases[0], pairs: pairs)
        var next = z
        next.withUnsafeMutableBufferPointer { bases[0].addPairs(to: $0.baseAddress!, pairs: pairs) }
        var rows = [Double](repeating: 0, count: problem.count)
        next.storage.withUnsafeBufferPointer { zp in
            rows.withUnsafeMutableBufferPointer { problem.squaredRowErrors(preactivation: zp.baseAddress!, into: $0.baseAddress!) }
        }
        var errors = ReluBoundProblem<Scalar>.groupRoots(rows, groupSize: problem.groupSize)
        let bound = factors.withFactorPointers { problem.certify(errors: &errors, factors: $0) }
        return ChainBest(factors: factors, bound: bound, source: .extended, z: next)
    }

    /// The starts of the fits at `k`: the cold start (the best family
    /// candidate) and the warm start (the previous best extended by singular
    /// pairs), each evaluated; duplicates dropped.
    func startCandidates(cold: ChainBest<Scalar>?, best: ChainBest<Scalar>?, k: Int) -> [EvaluatedCandidate<Scalar>] {
        var starts: [EvaluatedCandidate<Scalar>] = []
        func evaluated(_ f: RankFactors<Scalar>, _ source: BoundSource) -> EvaluatedCandidate<Scalar> {
            // Fits need rank exactly k: pad with zero columns/rows.
            let padded = f.k < k ? f.padded(to: k) : f
            let (bound, errors) = padded.withPointers { problem.evaluate(u: $0, v: $1, k: k, certified: false) }
            return EvaluatedCandidate(factors: padded, bound: bound, errors: errors, source: source)
        }
        let family = familyBounds[k]!
        let index = family.indices.min { family[$0] < family[$1] }!
        starts.append(evaluated(cold?.factors ?? bases[index].factors(rank: min(k, bases[index].size)),
                                cold?.source ?? bases[index].source))
        if plan.settings.warmStart, let best, best.source != .svd || best.factors.k == 0, best.factors.k < k,
           k <= bases[0].size {
            starts.append(evaluated(best.factors.extended(by: bases[0], pairs: best.factors.k..<k), .extended))
            if !plan.settings.coldStart { starts.removeFirst() }
        }
        return starts
    }

    /// One fit from `start`; its best iterate certified.
    func fit(from start: EvaluatedCandidate<Scalar>, deadline: Double, checkpoint: (Int) throws -> Void)
        throws -> (ChainBest<Scalar>, Int)
    {
        let runner = ReluBoundFit(problem: problem, settings: plan.fit, seed: plan.settings.seed, start: start.factors)
        let (best, steps) = try runner.run(from: start, deadline: deadline, checkpoint: checkpoint)
        var errors = best.errors
        let bound = best.factors.withFactorPointers { problem.certify(errors: &errors, factors: $0) }
        return (ChainBest(factors: best.factors, bound: bound, source: best.source, z: nil), steps)
    }

    /// `X V^T U^T` for the factors (pre-activation without the bias).
    func preactivation(of f: RankFactors<Scalar>) -> Matrix<Scalar> {
        let N = problem.count, m = f.m, n = f.n, k = f.k
        var z = Matrix<Scalar>(rows: N, columns: m)
        guard k > 0 else { return z }
        var pr = [Scalar](repeating: 0, count: N * k)
        f.withPointers { u, v in
            pr.withUnsafeMutableBufferPointer { pp in
                Scalar.gemm(transA: false, transB: true, m: N, n: k, k: n, alpha: 1, a: problem.x.base,
                            lda: problem.x.rowStride, b: v, ldb: n, beta: 0, c: pp.baseAddress!, ldc: k)
                z.withUnsafeMutableBufferPointer { zp in
                    Scalar.gemm(transA: false, transB: true, m: N, n: m, k: k, alpha: 1, a: pp.baseAddress!, lda: k,
                                b: u, ldb: k, beta: 0, c: zp.baseAddress!, ldc: m)
                }
            }
        }
        return z
    }
}
