import XCTest

@testable import ReluSVKit

/// Issue 8's warm-start plateaus: on a 100 x 100 layer with a bias over
/// nonnegative sparse inputs (post-ReLU-like), the former engine fitted each
/// `k` from the warm start only (the previous best extended by singular pairs
/// of `W`) with an Adam step scaled by `4 t / s_0` (tiny at large `k`), so
/// the fit could not leave its start and the curve held one value over runs
/// of `k` while `t_k` kept falling.
final class PlateauTests: XCTestCase {
    /// `W` He Gaussian (`N(0, 2/n)`), `b ~ N(0, 0.1^2)`, `X = ReLU(G - 1)` (about 16 % non-zero).
    func sparseLayer(m: Int = 100, n: Int = 100, points N: Int = 200) throws -> (ReluLayer<Double>, Matrix<Double>) {
        let random = CounterRandom(seed: 81, stream: .factorInitialisation)
        var w = Matrix<Double>(rows: m, columns: n)
        var x = Matrix<Double>(rows: N, columns: n)
        for i in 0..<m {
            for j in 0..<n { w[i, j] = (2.0 / Double(n)).squareRoot() * random.normal(row: i, column: j) }
        }
        for i in 0..<N { for j in 0..<n { x[i, j] = max(random.normal(row: m + i, column: j) - 1, 0) } }
        let b = (0..<m).map { 0.1 * random.normal(row: m + N, column: $0) }
        return (try w.withView { try ReluLayer(weight: $0, bias: b, slope: 0) }, x)
    }

    /// The plateaus of a curve (ascending `k`): maximal runs of at least
    /// `length` consecutive `k` whose bound stays within the relative `hold`
    /// of the run's first (a hold, not a decrease) while `t_k` falls by more than
    /// `fall` (relative) over the run, as `(first k, last k)`. Runs at the
    /// rounding level (`t_k` below `1e-9 t_0`) do not count.
    func plateaus(_ entries: [SpectrumEntry], length: Int = 3, fall: Double = 0.05, hold: Double = 1e-3) -> [(Int, Int)]
    {
        var out: [(Int, Int)] = []
        var start = 0
        for i in 1...entries.count {
            if i < entries.count, entries[i].bound >= entries[start].bound * (1 - hold) { continue }
            let run = entries[start..<i]
            let first = run.first!
            let last = run.last!
            if run.count >= length, last.truncationBound < (1 - fall) * first.truncationBound,
                first.truncationBound > 1e-9 * entries[0].truncationBound
            {
                out.append((first.k, last.k))
            }
            start = i
        }
        return out
    }

    /// The default start portfolio (a cold and a warm fit at every `k`) has
    /// no plateau on the constructed case, where the former warm-only engine
    /// (`coldStart = false`, no data-aware candidates, the plain extension
    /// as the warm start, the step it took at these `k`: `4 t / s_0` times
    /// the base step, about 1/20) has some. The
    /// step cap is lowered for speed in both (the plateaus come from the
    /// starts and the step, not the cap).
    func testNoPlateausWhereWarmStartsStall() throws {
        let (layer, x) = try sparseLayer()
        var settings = SpectrumSettings()
        settings.fit.maxSteps = 60
        settings.fitStride = 1
        var former = settings
        former.coldStart = false
        former.dataCandidates = false
        former.fit.learningRate = settings.fit.learningRate / 20
        let ks = Array(70..<100)
        let (current, old) = try x.withView { view -> ([SpectrumEntry], [SpectrumEntry]) in
            let problem = try ReluBoundProblem(layer: layer, points: view)
            return (
                try reluSpectrum(of: problem, ks: ks, settings: settings).entries,
                try reluSpectrum(of: problem, ks: ks, settings: former).entries
            )
        }
        XCTAssertFalse(plateaus(old).isEmpty, "the criterion must see the former engine's plateaus")
        XCTAssertTrue(plateaus(current).isEmpty, "plateaus: \(plateaus(current))")
    }
}
