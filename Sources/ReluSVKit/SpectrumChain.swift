/// A candidate of the chain: `base` (a family's approximant or a fit) plus
/// the singular pairs `base.k ..< rank` of `W`, with its certified bound.
/// Factors are formed only when asked for (`factors`).
struct ChainBest<Scalar: BLASScalar> {
    enum Base {
        /// `bases[index]` truncated to `rank` pairs.
        case family(index: Int, rank: Int)
        /// The factors of a fit.
        case fitted(RankFactors<Scalar>)
    }
    var base: Base
    /// Rank of the candidate (`>=` the base's; the difference is singular pairs of `W`).
    var rank: Int
    var bound: Double
    var source: BoundSource

    /// A fit's result (its extensions are evaluated along the chain).
    var fit: RankFactors<Scalar>? { if case .fitted(let f) = base { f } else { nil } }
}

/// One contiguous chain of `k`, processed in increasing order (MATH.md §3):
/// at each `k` the best family candidate (computed beforehand), the best
/// fit of the chain so far extended by the next singular pairs of `W`, the
/// previous best itself, and at fitted `k` a fit from the cold start (the best
/// family candidate) and one from the warm start (the previous best extended),
/// every result certified. The extensions of a fit are evaluated in one blocked
/// pass (`NestedCurve`) over the `k` up to the next fitted `k`.
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
    /// Where the points have at most half as many rows as inputs, the fits
    /// on all points run in their row space (`RowSpace`).
    var rowSpace: RowSpace<Scalar>? = nil

    /// The factors of a candidate.
    func factors(_ c: ChainBest<Scalar>) -> RankFactors<Scalar> {
        switch c.base {
        case .family(let index, let rank):
            let f = bases[index].factors(rank: rank)
            return c.rank > rank ? f.extended(by: bases[0], pairs: rank..<c.rank) : f
        case .fitted(let f):
            return c.rank > f.k ? f.extended(by: bases[0], pairs: f.k..<c.rank) : f
        }
    }

    /// The best family candidate at `k`.
    func familyCandidate(_ k: Int) -> ChainBest<Scalar> {
        let family = familyBounds[k]!
        let index = family.indices.min { family[$0] < family[$1] }!
        let rank = min(k, bases[index].size)
        return ChainBest(
            base: .family(index: index, rank: rank), rank: rank, bound: family[index],
            source: k == 0 ? .exact : bases[index].source)
    }

    /// An unfitted `k` whose value may still come from a bridge fit: its best
    /// candidate (before the previous `k`'s approximant is compared).
    struct Pending {
        var k: Int
        var candidate: ChainBest<Scalar>
    }

    /// What a chain leaves to bridge across its ends (`bridgeEnds`, after all
    /// chains): the unfitted `k` before its first fitted `k` (`head`), and
    /// those after its last fitted `k` (`tail`), whose best approximant is
    /// `anchor` (nil: the chain fitted no `k`, `tail` holds all its unfitted `k`).
    struct Ends {
        var head: [Pending] = []
        var anchor: ChainBest<Scalar>?
        var tail: [Pending] = []
        /// The chain's first fitted `k`.
        var firstFitted: Int?
    }

    /// The entries of `chain` and its `Ends`.
    func run(
        _ chain: [Int], deadline: Double, shared: SharedProgress, report: () throws -> Void
    ) throws -> (entries: [Int: (SpectrumEntry, RankFactors<Scalar>?)], ends: Ends) {
        var out: [Int: (SpectrumEntry, RankFactors<Scalar>?)] = [:]
        var best: ChainBest<Scalar>?
        // The best fit so far and its extensions' bounds at the k up to the next fitted k.
        var origin: ChainBest<Scalar>?
        var extensions: [Int: Double] = [:]
        // The unfitted k since the last fitted k, and the best approximant at that fitted k.
        var pending: [Pending] = []
        var anchor: ChainBest<Scalar>?
        var ends = Ends()
        var remainingCost = chain.reduce(0.0) { $0 + plan.cost($1) }
        for (position, k) in chain.enumerated() {
            let started = now()
            try report()
            var result = familyCandidate(k)
            var entry = SpectrumEntry(
                k: k, sigma: Double(svd.s[k]), truncationBound: familyBounds[k]![0], bound: 0,
                source: .svd, steps: 0, seconds: 0)
            var extended: ChainBest<Scalar>?
            if let origin, let bound = extensions[k] {
                extended = ChainBest(base: origin.base, rank: k, bound: bound, source: .extended)
                if bound < result.bound { result = extended! }
            }
            if plan.fitted(k) {
                let share = plan.cost(k) / max(remainingCost, 1)
                let fitDeadline = deadline.isFinite ? started + (deadline - started) * share : .infinity
                var reported = 0
                var starts = startCandidates(cold: result.source == .extended ? nil : result, best: best, k: k)
                if plan.weightedStart, let w = weighted[k], w.bound < result.bound {
                    starts.append(evaluatedStart(factors(w), k: k, source: w.source))
                }
                var bestFit = extended
                // The warm fit (and the weighted one): where its start is within `warmFitSlack` of
                // the best result so far, or that is not below the previous k (a plateau otherwise).
                for (index, start) in starts.enumerated()
                where index == 0 || start.bound <= result.bound * (1 + plan.settings.warmFitSlack)
                    || result.bound >= best?.bound ?? .infinity
                {
                    // Each start's fit owns `maxSteps` of the k's progress units (a subset
                    // fit repeated on all points may take more steps than that).
                    let slot = index * plan.fit.maxSteps
                    let (fitted, steps) = try fit(from: start, settings: plan.fit, deadline: fitDeadline) { step in
                        let done = slot + min(step, plan.fit.maxSteps)
                        if done > reported {
                            shared.add(done - reported)
                            reported = done
                        }
                        try report()
                    }
                    entry.steps += steps
                    if fitted.bound < result.bound { result = fitted }
                    if fitted.bound < bestFit?.bound ?? .infinity { bestFit = fitted }
                }
                shared.add(max(0, plan.units(k) - 1 - reported))
                // The extensions of the best fit so far, up to the next fitted k.
                if let bestFit {
                    origin = bestFit
                    let next = chain[(position + 1)...].firstIndex { plan.fitted($0) } ?? chain.count - 1
                    extensions = try extensionBounds(
                        of: bestFit, ks: Array(chain[(position + 1)..<min(next + 1, chain.count)]),
                        report: report)
                }
            }
            // A candidate; a start only where the budget leaves room (`plan.weightedStart`):
            // as the cold start, fits from it ended higher on the suite's 100-wide layers.
            if let w = weighted[k], w.bound < result.bound { result = w }
            if plan.bridged(k) { pending.append(Pending(k: k, candidate: result)) }
            if let previous = best, previous.bound <= result.bound {
                entry.bound = previous.bound
                entry.source = .previousK
                out[k] = (entry, plan.settings.keepFactors ? factors(previous) : nil)
            } else {
                entry.bound = result.bound
                entry.source = result.source
                best = result
                out[k] = (entry, plan.settings.keepFactors ? factors(result) : nil)
            }
            if entry.bound == 0 {
                entry.source = .zero
                out[k]!.0 = entry
            }
            out[k]!.0.seconds = now() - started
            remainingCost -= plan.cost(k)
            shared.add(1)
            if plan.fitted(k) {
                if anchor == nil {
                    ends.head = pending
                    ends.firstFitted = k
                } else {
                    // The k since the previous fitted k, now that the drop across them is known.
                    try bridge(
                        pending, from: anchor, to: entry.bound, out: &out, deadline: deadline, shared: shared,
                        report: report)
                }
                pending = []
                anchor = best
            }
        }
        ends.anchor = anchor
        ends.tail = pending
        return (out, ends)
    }

    /// Bridge fits (`SpectrumSettings.bridgeShare`) at the unfitted `pending`
    /// `k` between the fitted `k` of `anchor` (the best approximant there) and
    /// the next fitted `k`, whose bound is `next` (nil: none), only where the curve falls
    /// steeply across them (`anchor.bound > (1 + bridgeDrop) next`); elsewhere
    /// the previous `k`'s value stays close. Each result replaces the entry in
    /// `out` where it is lower (source `fit` or `refine`). The fitted `k` and
    /// their starts do not depend on them.
    func bridge(
        _ pending: [Pending], from anchor: ChainBest<Scalar>?, to next: Double?,
        out: inout [Int: (SpectrumEntry, RankFactors<Scalar>?)], deadline: Double, shared: SharedProgress,
        report: () throws -> Void
    ) throws {
        guard let anchor, let next, !pending.isEmpty, anchor.bound > (1 + plan.settings.bridgeDrop) * next,
            now() < deadline
        else {
            shared.add(pending.count * plan.bridge.maxSteps)
            return
        }
        for p in pending {
            let started = now()
            let (fitted, steps) = try bridgeFit(
                k: p.k, candidate: p.candidate, anchor: anchor, deadline: deadline, shared: shared, report: report)
            out[p.k]!.0.steps += steps
            out[p.k]!.0.seconds += now() - started
            guard fitted.bound < out[p.k]!.0.bound else { continue }
            out[p.k]!.0.bound = fitted.bound
            out[p.k]!.0.source = fitted.bound == 0 ? .zero : fitted.source
            if plan.settings.keepFactors { out[p.k]!.1 = factors(fitted) }
        }
    }

    /// The bridge fit at an unfitted `k`: a minimax refinement (`plan.bridge`,
    /// no least-squares phase) from the lower of `candidate` (the best
    /// candidate at `k`) and `anchor` extended by the next singular pairs of
    /// `W`; its best iterate certified. Reports `plan.bridge.maxSteps` progress units.
    func bridgeFit(
        k: Int, candidate: ChainBest<Scalar>, anchor: ChainBest<Scalar>, deadline: Double, shared: SharedProgress,
        report: () throws -> Void
    ) throws -> (ChainBest<Scalar>, Int) {
        let start = startCandidates(cold: candidate, best: anchor, k: k).min { $0.bound < $1.bound }!
        var reported = 0
        let (fitted, steps) = try fit(from: start, settings: plan.bridge, refineOnly: true, deadline: deadline) {
            step in
            shared.add(step - reported)
            reported = step
            try report()
        }
        shared.add(plan.bridge.maxSteps - reported)
        return (fitted, steps)
    }

    /// The certified bounds of `c` extended by singular pairs of `W` to each `k`
    /// of `ks` (ascending, above `c`'s rank), by blocked passes over runs of
    /// `extensionRun` consecutive `k`; it stops after a run where no extension
    /// was below the best family candidate (the extensions rarely recover).
    func extensionBounds(of c: ChainBest<Scalar>, ks: [Int], report: () throws -> Void) throws -> [Int: Double] {
        guard let fit = c.fit, let last = ks.last, last <= bases[0].size else { return [:] }
        var out: [Int: Double] = [:]
        var from = 0
        while from < ks.count {
            let run = Array(ks[from..<min(from + SpectrumChain.extensionRun, ks.count)])
            let bounds = try NestedCurve.bounds(
                problem: problem, basis: bases[0], first: fit.k,
                counts: run.map { $0 - fit.k }, start: fit, report: report)
            for (k, bound) in zip(run, bounds) { out[k] = bound }
            guard zip(run, bounds).contains(where: { $1 < familyCandidate($0).bound }) else { break }
            from += run.count
        }
        return out
    }

    /// `k` per blocked pass of the extensions.
    static var extensionRun: Int { 16 }

    /// The starts of the fits at `k`: the cold start (the best family
    /// candidate) and the warm start (the previous best extended by singular
    /// pairs), each evaluated; duplicates dropped.
    func startCandidates(cold: ChainBest<Scalar>?, best: ChainBest<Scalar>?, k: Int) -> [EvaluatedCandidate<Scalar>] {
        var starts: [EvaluatedCandidate<Scalar>] = []
        func evaluated(_ f: RankFactors<Scalar>, _ source: BoundSource) -> EvaluatedCandidate<Scalar> {
            evaluatedStart(f, k: k, source: source)
        }
        let coldStart = cold ?? familyCandidate(k)
        starts.append(evaluated(factors(coldStart), coldStart.source))
        if plan.settings.warmStart, let best, best.source != .svd || best.rank == 0, best.rank < k, k <= bases[0].size {
            var warm = best
            warm.rank = k
            starts.append(evaluated(factors(warm), .extended))
            if !plan.settings.coldStart { starts.removeFirst() }
        }
        return starts
    }

    /// `f` as the start of a rank-`k` fit (padded with zero columns and rows
    /// to rank exactly `k`), evaluated.
    func evaluatedStart(_ f: RankFactors<Scalar>, k: Int, source: BoundSource) -> EvaluatedCandidate<Scalar> {
        let padded = f.k < k ? f.padded(to: k) : f
        let (bound, errors) = padded.withPointers { problem.evaluate(u: $0, v: $1, k: k, certified: false) }
        return EvaluatedCandidate(factors: padded, bound: bound, errors: errors, source: source)
    }

    /// One fit from `start` with `settings` on the fit's points (`fitPoints`);
    /// its best iterate certified over all points.
    func fit(
        from start: EvaluatedCandidate<Scalar>, settings: FitSettings, refineOnly: Bool = false, deadline: Double,
        checkpoint: (Int) throws -> Void
    ) throws -> (ChainBest<Scalar>, Int) {
        let limit = plan.settings.fitPoints
        guard limit > 0, problem.groups > limit else {
            return try fullFit(from: start, settings: settings, deadline: deadline, checkpoint: checkpoint)
        }
        let (subsetBest, subsetSteps) = try subsetFit(
            from: start, settings: settings, limit: limit, deadline: deadline, checkpoint: checkpoint)
        // A subset fit that ends no lower over all points than its start (points outside it rose) is
        // repeated on all points, least squares first unless `refineOnly` (the subset's fit skips it).
        guard subsetBest.bound >= start.bound, now() < deadline else { return (subsetBest, subsetSteps) }
        var full = settings
        if !refineOnly { full.leastSquaresFirst = plan.settings.fit.leastSquaresFirst }
        let (best, steps) = try fullFit(from: start, settings: full, deadline: deadline) {
            try checkpoint(min(settings.maxSteps, subsetSteps + $0))
        }
        return (best.bound < subsetBest.bound ? best : subsetBest, subsetSteps + steps)
    }

    /// One fit from `start` on all points (in their row space where `rowSpace`
    /// is set); its best iterate certified.
    func fullFit(
        from start: EvaluatedCandidate<Scalar>, settings: FitSettings, deadline: Double,
        checkpoint: (Int) throws -> Void
    ) throws -> (ChainBest<Scalar>, Int) {
        if let rowSpace {
            return try rowSpaceFit(
                rowSpace, from: start, settings: settings, deadline: deadline, checkpoint: checkpoint)
        }
        let runner = ReluBoundFit(problem: problem, settings: settings, seed: plan.settings.seed, start: start.factors)
        let (best, steps) = try runner.run(from: start, deadline: deadline, checkpoint: checkpoint)
        var errors = best.errors
        let bound = best.factors.withFactorPointers { problem.certify(errors: &errors, factors: $0) }
        return (ChainBest(base: .fitted(best.factors), rank: best.factors.k, bound: bound, source: best.source), steps)
    }

    /// One fit from `start` over `V' = V B^T` on the points' coordinates in
    /// their row space (`RowSpace`); its best iterate lifted to `V = V' B` and
    /// certified on the points (the start's factors where the fit found
    /// nothing lower).
    func rowSpaceFit(
        _ rowSpace: RowSpace<Scalar>, from start: EvaluatedCandidate<Scalar>, settings: FitSettings,
        deadline: Double, checkpoint: (Int) throws -> Void
    ) throws -> (ChainBest<Scalar>, Int) {
        let reduced = EvaluatedCandidate(
            factors: rowSpace.reduce(start.factors), bound: start.bound, errors: start.errors, source: start.source)
        let (best, steps) = try rowSpace.withProblem { problem in
            let runner = ReluBoundFit(
                problem: problem, settings: settings, seed: plan.settings.seed, start: reduced.factors)
            return try runner.run(from: reduced, deadline: deadline, checkpoint: checkpoint)
        }
        guard best.bound < start.bound else {
            // Nothing lower: the start, whose errors on the points are known, certified as `fullFit` does.
            var errors = start.errors
            let bound = start.factors.withFactorPointers { problem.certify(errors: &errors, factors: $0) }
            return (
                ChainBest(base: .fitted(start.factors), rank: start.factors.k, bound: bound, source: start.source),
                steps
            )
        }
        let factors = rowSpace.lift(best.factors)
        let (bound, _) = factors.withPointers { problem.evaluate(u: $0, v: $1, k: factors.k, certified: true) }
        return (ChainBest(base: .fitted(factors), rank: factors.k, bound: bound, source: best.source), steps)
    }

    /// One fit from `start` on the `limit` groups of largest error under it;
    /// its best iterate certified over all points.
    func subsetFit(
        from start: EvaluatedCandidate<Scalar>, settings: FitSettings, limit: Int, deadline: Double,
        checkpoint: (Int) throws -> Void
    ) throws -> (ChainBest<Scalar>, Int) {
        // The groups of largest start error; the rest is only certified after.
        let groups = start.errors.indices.sorted { start.errors[$0] > start.errors[$1] }.prefix(limit).sorted()
        let P = problem.groupSize
        let n = problem.layer.inputs
        var points = Matrix<Scalar>(rows: groups.count * P, columns: n)
        points.withUnsafeMutableBufferPointer { p in
            for (slot, g) in groups.enumerated() {
                for r in 0..<P {
                    (p.baseAddress! + (slot * P + r) * n).update(from: problem.x.row(g * P + r), count: n)
                }
            }
        }
        let (best, steps) = try points.withView { view in
            let subset = try ReluBoundProblem(layer: problem.layer, points: view, groupSize: P)
            let errors = groups.map { start.errors[$0] }
            let subStart = EvaluatedCandidate(
                factors: start.factors, bound: errors.reduce(0, max), errors: errors,
                source: start.source)
            let runner = ReluBoundFit(
                problem: subset, settings: settings, seed: plan.settings.seed, start: start.factors)
            return try runner.run(from: subStart, deadline: deadline, checkpoint: checkpoint)
        }
        let (bound, _) = best.factors.withPointers {
            problem.evaluate(u: $0, v: $1, k: best.factors.k, certified: true)
        }
        return (ChainBest(base: .fitted(best.factors), rank: best.factors.k, bound: bound, source: best.source), steps)
    }
}
