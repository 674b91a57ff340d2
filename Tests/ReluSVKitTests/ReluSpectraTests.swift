import CReluSV
import XCTest

@testable import CABI
@testable import ReluSVKit

/// Linear spectra and ReLU singular-value bounds against MATH.md §1–3,
/// computed independently here by direct loops.
final class ReluSpectraTests: XCTestCase {
    /// A seeded `rows x columns` Gaussian matrix scaled by `scale`.
    func gaussian(_ rows: Int, _ columns: Int, seed: UInt64, scale: Double = 1) -> Matrix<Double> {
        let random = CounterRandom(seed: seed, stream: .factorInitialisation)
        var a = Matrix<Double>(rows: rows, columns: columns)
        for i in 0..<rows { for j in 0..<columns { a[i, j] = scale * random.normal(row: i, column: j) } }
        return a
    }

    /// `max_x ||act(W x + b) - act(L x + b)||` by direct loops (`L` dense).
    func maxError(_ w: Matrix<Double>, _ b: [Double], _ x: Matrix<Double>, _ l: Matrix<Double>) -> Double {
        var worst = 0.0
        for i in 0..<x.rows {
            var s = 0.0
            for r in 0..<w.rows {
                var wx = b[r]
                var lx = b[r]
                for c in 0..<w.columns {
                    wx += w[r, c] * x[i, c]
                    lx += l[r, c] * x[i, c]
                }
                let d = max(wx, 0) - max(lx, 0)
                s += d * d
            }
            worst = max(worst, s.squareRoot())
        }
        return worst
    }

    func dense(_ f: RankFactors<Double>) -> Matrix<Double> {
        var l = Matrix<Double>(rows: f.m, columns: f.n)
        for i in 0..<f.m { for j in 0..<f.n { for r in 0..<f.k { l[i, j] += f.u[i * f.k + r] * f.v[r * f.n + j] } } }
        return l
    }

    func testSingularValuesOfADiagonalMatrix() throws {
        var a = Matrix<Double>(rows: 3, columns: 4)
        a[0, 0] = 2
        a[1, 1] = -5
        a[2, 2] = 3
        let s = try a.withView { try singularValues(of: $0) }
        XCTAssertEqual(s, [5, 3, 2])
        let svd = try a.withView { try thinSVD(of: $0) }
        XCTAssertEqual(svd.numericalRank, 3)
    }

    func testCurveOracles() throws {
        let (m, n, N) = (7, 6, 120)
        let w = gaussian(m, n, seed: 1, scale: 0.4)
        let b = (0..<m).map { 0.1 * Double($0 % 3) - 0.1 }
        let x = gaussian(N, n, seed: 2)
        let layer = try w.withView { try ReluLayer(weight: $0, bias: b, slope: 0) }
        var settings = SpectrumSettings()
        settings.fit.maxSteps = 60
        settings.keepFactors = true
        let spectrum = try x.withView { view -> ReluSpectrum<Double> in
            let problem = try ReluBoundProblem(layer: layer, points: view)
            return try reluSpectrum(of: problem, ks: Array(0..<6), settings: settings)
        }
        let zero = Matrix<Double>(rows: m, columns: n)
        XCTAssertEqual(spectrum.entries[0].bound, maxError(w, b, x, zero), accuracy: 1e-12)
        XCTAssertEqual(spectrum.entries[0].source, .exact)
        var previous = Double.infinity
        for (entry, factors) in zip(spectrum.entries, spectrum.factors) {
            XCTAssertLessThanOrEqual(entry.bound, entry.truncationBound * (1 + 1e-12))
            XCTAssertLessThanOrEqual(entry.truncationBound, entry.sigma * spectrum.dataMaxNorm * (1 + 1e-9))
            XCTAssertLessThanOrEqual(entry.bound, previous)
            previous = entry.bound
            let f = try XCTUnwrap(factors)
            XCTAssertLessThanOrEqual(f.k, entry.k)
            XCTAssertEqual(entry.bound, maxError(w, b, x, dense(f)), accuracy: 1e-10)
        }
    }

    func testZeroAtAndAboveTheRank() throws {
        let a = gaussian(6, 2, seed: 3)
        let c = gaussian(2, 5, seed: 4)
        var w = Matrix<Double>(rows: 6, columns: 5)
        for i in 0..<6 { for j in 0..<5 { w[i, j] = a[i, 0] * c[0, j] + a[i, 1] * c[1, j] } }
        let layer = try w.withView { try ReluLayer(weight: $0, bias: nil, slope: 0) }
        let sample: Matrix<Double> = try sphereSample(points: 200, dimension: 5, seed: 5)
        var settings = SpectrumSettings()
        settings.keepFactors = true
        let spectrum = try sample.withView {
            try reluSpectrum(of: ReluBoundProblem(layer: layer, points: $0), ks: [0, 1, 2, 3, 4], settings: settings)
        }
        XCTAssertGreaterThan(spectrum.entries[1].bound, 0)
        let s0 = spectrum.entries[0].bound
        // W has rank 2 up to rounding: the reported value is the evaluated error of
        // a returned rank-<= k matrix, at the rounding level, never a declared zero.
        for (e, f) in zip(spectrum.entries.dropFirst(2), spectrum.factors.dropFirst(2)) {
            XCTAssertLessThan(e.bound, 1e-13 * s0)
            XCTAssertEqual(
                e.bound, maxError(w, [Double](repeating: 0, count: 6), sample, dense(try XCTUnwrap(f))),
                accuracy: 1e-15 * s0)
            if e.source == .zero { XCTAssertEqual(e.bound, 0) }
        }
    }

    func testGradientMatchesFiniteDifferences() throws {
        let (m, n, k, N) = (5, 4, 2, 30)
        let w = gaussian(m, n, seed: 6)
        let x = gaussian(N, n, seed: 7)
        let u = gaussian(m, k, seed: 8)
        let v = gaussian(k, n, seed: 9)
        let b = [0.1, -0.2, 0.3, 0.0, 0.05]
        for slope in [0.0, 0.2] {
            let layer = try w.withView { try ReluLayer(weight: $0, bias: b, slope: slope) }
            try x.withView { view in
                let problem = try ReluBoundProblem(layer: layer, points: view)
                func loss(_ uu: [Double], _ vv: [Double]) -> Double {
                    problem.lossAndGradient(factors: RankFactors(k: k, m: m, n: n, u: uu, v: vv)).loss
                }
                let (_, gu, gv) = problem.lossAndGradient(
                    factors: RankFactors(k: k, m: m, n: n, u: u.storage, v: v.storage))
                let h = 1e-6
                for i in 0..<(m * k) {
                    var up = u.storage
                    var um = u.storage
                    up[i] += h
                    um[i] -= h
                    XCTAssertEqual(
                        gu[i], (loss(up, v.storage) - loss(um, v.storage)) / (2 * h),
                        accuracy: 1e-5 * max(1, abs(gu[i])))
                }
                for i in 0..<(k * n) {
                    var vp = v.storage
                    var vm = v.storage
                    vp[i] += h
                    vm[i] -= h
                    XCTAssertEqual(
                        gv[i], (loss(u.storage, vp) - loss(u.storage, vm)) / (2 * h),
                        accuracy: 1e-5 * max(1, abs(gv[i])))
                }
            }
        }
    }

    func testCancellationThroughTheCCallback() {
        let w = gaussian(20, 20, seed: 10)
        let x = gaussian(500, 20, seed: 11)
        var wm = relusv_matrix(data: nil, dtype: RELUSV_FLOAT64.rawValue.int32, rows: 20, cols: 20, row_stride: 0)
        var xm = relusv_matrix(data: nil, dtype: RELUSV_FLOAT64.rawValue.int32, rows: 500, cols: 20, row_stride: 0)
        var spectrum: OpaquePointer?
        let status: relusv_status = w.storage.withUnsafeBufferPointer { wp in
            x.storage.withUnsafeBufferPointer { xp in
                wm.data = UnsafeRawPointer(wp.baseAddress!)
                xm.data = UnsafeRawPointer(xp.baseAddress!)
                return relusv_relu_singular_values(&wm, nil, &xm, nil, 0, nil, &spectrum, { _, _, _ in 1 }, nil)
            }
        }
        XCTAssertEqual(status, RELUSV_ERROR_CANCELLED)
        XCTAssertNil(spectrum)
    }

    func testLinearOperatorWidthInsideItsBound() throws {
        let w = gaussian(6, 9, seed: 12)
        let r = try w.withView { try linearOperatorWidth(weight: $0, samples: 2000, seed: 13, trim: 0) }
        XCTAssertGreaterThan(r.estimate + 4 * r.standardError, r.lower)
        XCTAssertLessThan(r.estimate - 4 * r.standardError, r.upper)
        let frobenius = w.storage.reduce(0) { $0 + $1 * $1 }.squareRoot()
        XCTAssertEqual(r.upper, 2 * frobenius, accuracy: 1e-12)
    }
}
