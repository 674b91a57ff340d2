/// Weighted reduced-rank regression by bands of `k` (MATH.md §3, the
/// data-aware candidates, weighted), for layers where reweighting at every
/// `k` (`weightedCandidates`) costs too much.
///
/// The requested `k` are split into contiguous bands of about `width` `k`
/// (`width`: narrower where their rounds are affordable).
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

    /// At most this many bands (beyond it narrower bands gained little on
    /// the layers measured in docs/engine.md).
    static let maxBands = 32

    /// Estimated flops of one Lawson round at the middle `k = center`: the
    /// Gram matrix of the scaled pre-activations (`N m^2`), its
    /// eigendecomposition (about `9 m^3`) and the evaluation at `center`.
    static func roundCost(points N: Int, outputs m: Int, inputs n: Int, center: Int) -> Double {
        let (N, m, n) = (Double(N), Double(m), Double(n))
        return N * m * m + 9 * m * m * m + 2 * N * Double(center) * (n + m)
    }

    /// The band width: the smallest power of two, with at most `maxBands`
    /// bands, at which the bands' Lawson rounds cost at most `allowed` flops,
    /// and at most `widest`. Narrower bands put each `k` nearer to where its
    /// weights were fitted (lower bounds; docs/engine.md, weighted regression by bands).
    static func width(
        points N: Int, outputs m: Int, inputs n: Int, ks: [Int], rounds: Int, widest: Int, allowed: Double
    ) -> Int {
        let limit = limit(points: N, outputs: m)
        let count = ks.filter { $0 > 0 && $0 < limit }.count
        let round = roundCost(points: N, outputs: m, inputs: n, center: (ks.max() ?? 0) / 2)
        var width = 1
        while width < widest {
            let bands = (count + width - 1) / width
            if bands <= maxBands, Double(bands * rounds) * round <= allowed { break }
            width *= 2
        }
        return min(width, widest)
    }

    /// Estimated flops of the bands' blocked passes over `ks` (for the
    /// curve's plan): per band the pass over its `k` and its start.
    static func passCost(points N: Int, outputs m: Int, inputs n: Int, ks: [Int], width: Int) -> Double {
        bands(of: ks, limit: limit(points: N, outputs: m), width: width).reduce(0.0) { total, band in
            total + SpectrumPlan.elementCost * Double(N) * Double(m) * Double(band.ks.count)
                + 2 * Double(N) * Double(band.ks[0]) * Double(n + m)
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
    let bands = Array(WeightedBands.bands(of: ks, limit: rrr.size, width: width).reversed())
    let regression = WeightedRegression(problem: problem, rounds: rounds, exponent: exponent, route: .gram)
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
            results[index].value = (basis.factorsOnly(), Dictionary(uniqueKeysWithValues: zip(band.ks, values)))
        }
    }
    try runInParallel(tasks, threads: threads, shared: shared, progress: progress)
    return results.compactMap(\.value)
}
