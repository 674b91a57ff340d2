/// Weighted reduced-rank regression by bands of `k` (MATH.md §3, the
/// data-aware candidates, weighted), for layers where reweighting at every
/// `k` (`weightedCandidates`) costs too much.
///
/// The requested `k` are split into contiguous bands of about `width` `k`.
/// In each band, Lawson's iteration (`WeightedRegression`) runs at the band's
/// middle `k = c`: the point weights `d` of its best round give the weighted
/// regression's `Q` (left singular vectors of `Z D^(1/2)`, `Z = W X^T`), and
/// the nested family `L_j = Q_j Q_j^T W` is evaluated at every `j` of the
/// band by one blocked pass (`NestedCurve`, started from `L_lo` by two GEMMs):
/// weights that bring the worst points down at `c` also do so at nearby `j`.
/// Every bound is certified like every other candidate; the source is
/// `weighted-rrr`.
///
/// Work per band: `rounds` reweighted regressions (the `m x m` Gram matrix of
/// the scaled pre-activations and its eigendecomposition, plus one
/// evaluation at `c`) and one pass over the band (`O(N m)` per `k`).
struct WeightedBands {
    /// Ranks below this have a weighted regression: the size of the plain
    /// regression's basis, `min(N, m)` (`CandidateBasis.reducedRankRegression`).
    static func limit(points: Int, outputs m: Int) -> Int { min(points, m) }

    /// The bands of the ascending `ks` (those in `1 ..< limit`): contiguous
    /// runs of about `width` `k`, each with its middle `k`.
    static func bands(of ks: [Int], limit: Int, width: Int) -> [(center: Int, ks: [Int])] {
        let inside = ks.filter { $0 > 0 && $0 < limit }
        guard !inside.isEmpty, width > 0 else { return [] }
        let count = (inside.count + width - 1) / width
        return (0..<count).map { i in
            let band = Array(inside[(inside.count * i / count)..<(inside.count * (i + 1) / count)])
            return (band[band.count / 2], band)
        }
    }

    /// Estimated flops of the bands of `ks` (for the curve's plan): per band
    /// `rounds` Gram matrices and eigendecompositions and evaluations at
    /// the middle `k`, and the band's blocked pass.
    static func cost<Scalar>(
        problem: ReluBoundProblem<Scalar>, ks: [Int], width: Int, rounds: Int, elementCost: Double
    ) -> Double {
        let N = Double(problem.count)
        let m = Double(problem.layer.outputs)
        let n = Double(problem.layer.inputs)
        return bands(of: ks, limit: limit(points: problem.count, outputs: problem.layer.outputs), width: width).reduce(
            0.0
        ) { total, band in
            let round = N * m * m + 9 * m * m * m + 2 * N * Double(band.center) * (n + m)
            let pass = elementCost * N * m * Double(band.ks.count) + 2 * N * Double(band.ks[0]) * (n + m)
            return total + Double(rounds) * round + pass
        }
    }
}

/// The weighted regression's basis of every band of `ks` where it beats the
/// plain regression `rrr` at the band's middle `k`, with its certified bound
/// at each `k` of the band; one progress unit per `k` of a band. Bands run in
/// parallel on `threads` threads.
func weightedBandCurves<Scalar: BLASScalar>(
    problem: ReluBoundProblem<Scalar>, rrr: CandidateBasis<Scalar>, ks: [Int], width: Int, rounds: Int,
    exponent: Double, threads: Int, shared: SharedProgress, progress: Progress, report: @escaping () throws -> Void
) throws -> [(basis: CandidateBasis<Scalar>, bounds: [Int: Double])] {
    // The costliest bands (largest k) first, so that the threads end together.
    let bands = WeightedBands.bands(of: ks, limit: rrr.size, width: width).reversed().map { $0 }
    let regression = WeightedRegression(problem: problem, rounds: rounds, exponent: exponent, gram: true)
    let results = bands.map { _ in Box<(basis: CandidateBasis<Scalar>, bounds: [Int: Double])?>(nil) }
    let tasks: [() throws -> Void] = bands.indices.map { index in
        {
            let band = bands[index]
            defer { shared.add(band.ks.count) }
            try report()
            let plain = rrr.factors(rank: band.center)
            let (bound, errors) = plain.withPointers {
                problem.evaluate(u: $0, v: $1, k: band.center, certified: false)
            }
            guard bound > 0, let best = try regression.bestRound(k: band.center, errors: errors, bound: bound),
                let last = band.ks.last, last <= best.vt.rows
            else { return }
            let full = regression.projection(best.vt, rank: last)
            let basis = CandidateBasis(
                source: .weightedRRR, b: Matrix(rows: full.m, columns: last, storage: full.u),
                c: Matrix(rows: last, columns: full.n, storage: full.v), points: problem.x)
            let first = band.ks[0]
            let values = try NestedCurve.bounds(
                problem: problem, basis: basis, first: first, counts: band.ks.map { $0 - first },
                start: basis.factors(rank: first), report: report)
            results[index].value = (basis, Dictionary(uniqueKeysWithValues: zip(band.ks, values)))
        }
    }
    try runInParallel(tasks, threads: threads, shared: shared, progress: progress)
    return results.compactMap(\.value)
}
