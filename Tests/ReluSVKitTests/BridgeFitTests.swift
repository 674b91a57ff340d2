import XCTest

@testable import ReluSVKit

/// Bridge fits between strided fits (`SpectrumSettings.bridgeShare`,
/// MATH.md §3): where fits run at every 4th `k`, the `k` between get a short
/// refinement instead of repeating the fitted value before them.
final class BridgeFitTests: XCTestCase {
    /// `W` He Gaussian (`N(0, 2/n)`), `b ~ N(0, 0.1^2)`, `X` standard Gaussian.
    func layer(m: Int = 24, n: Int = 24, points N: Int = 160) throws -> (ReluLayer<Double>, Matrix<Double>) {
        let random = CounterRandom(seed: 18, stream: .factorInitialisation)
        var w = Matrix<Double>(rows: m, columns: n)
        var x = Matrix<Double>(rows: N, columns: n)
        for i in 0..<m {
            for j in 0..<n { w[i, j] = (2.0 / Double(n)).squareRoot() * random.normal(row: i, column: j) }
        }
        for i in 0..<N { for j in 0..<n { x[i, j] = random.normal(row: m + i, column: j) } }
        let b = (0..<m).map { 0.1 * random.normal(row: m + N, column: $0) }
        return (try w.withView { try ReluLayer(weight: $0, bias: b, slope: 0) }, x)
    }

    /// `max_x ||ReLU(W x + b) - ReLU(U V x + b)||` by direct loops in `Double` (MATH.md §3, step 2).
    func exactError(_ layer: ReluLayer<Double>, _ x: Matrix<Double>, _ f: RankFactors<Double>) -> Double {
        let (m, n) = (layer.outputs, layer.inputs)
        var worst = 0.0
        for i in 0..<x.rows {
            let p = (0..<f.k).map { r in (0..<n).reduce(0.0) { $0 + f.v[r * n + $1] * x[i, $1] } }
            var s = 0.0
            for r in 0..<m {
                var wx = layer.bias[r]
                for c in 0..<n { wx += layer.weight[r, c] * x[i, c] }
                let lx = (0..<f.k).reduce(layer.bias[r]) { $0 + f.u[r * f.k + $1] * p[$1] }
                let d = max(wx, 0) - max(lx, 0)
                s += d * d
            }
            worst = max(worst, s.squareRoot())
        }
        return worst
    }

    func curves() throws -> (
        layer: ReluLayer<Double>, x: Matrix<Double>, on: ReluSpectrum<Double>, off: ReluSpectrum<Double>
    ) {
        let (layer, x) = try layer()
        var settings = SpectrumSettings()
        settings.fitStride = 4
        settings.fit.maxSteps = 120
        settings.keepFactors = true
        var off = settings
        off.bridgeShare = 0
        let ks = Array(0..<24)
        let (a, b) = try x.withView { view -> (ReluSpectrum<Double>, ReluSpectrum<Double>) in
            let problem = try ReluBoundProblem(layer: layer, points: view)
            return (
                try reluSpectrum(of: problem, ks: ks, settings: settings),
                try reluSpectrum(of: problem, ks: ks, settings: off)
            )
        }
        return (layer, x, a, b)
    }

    /// With bridge fits no `k` is higher than without, the fitted `k` are
    /// unchanged, some staircase steps (`previous-k` without them) are now
    /// strictly below the fitted value before them, and every bound is at
    /// most the truncated SVD's exact error `t_k` and is the exact error of
    /// the returned factors (recomputed here in `Double`).
    func testBridgeFitsLowerTheStaircaseAndStayCertified() throws {
        let (layer, x, on, off) = try curves()
        XCTAssertEqual(on.fitStride, 4)
        var lowered = 0
        for (index, (a, b)) in zip(on.entries, off.entries).enumerated() {
            XCTAssertLessThanOrEqual(a.bound, b.bound, "k = \(a.k)")
            if b.source != .previousK, b.k % 4 == 0 || b.k < 4 { XCTAssertEqual(a.bound, b.bound, "fitted k = \(a.k)") }
            XCTAssertLessThanOrEqual(a.bound, a.truncationBound * (1 + 1e-12), "k = \(a.k)")
            let f = try XCTUnwrap(on.factors[index])
            XCTAssertLessThanOrEqual(f.k, a.k)
            XCTAssertEqual(a.bound, exactError(layer, x, f), accuracy: 1e-10 * on.entries[0].bound, "k = \(a.k)")
            if b.source == .previousK, a.k % 4 != 0, a.bound < b.bound {
                let fitted = off.entries[a.k - a.k % 4].bound
                XCTAssertLessThan(a.bound, fitted, "k = \(a.k)")
                lowered += 1
            }
        }
        XCTAssertGreaterThanOrEqual(lowered, 2, "bridge fits should lower some staircase steps")
    }
}
