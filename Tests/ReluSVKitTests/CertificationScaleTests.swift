import XCTest

@testable import ReluSVKit

/// Certification at every scale (`CertificationScale`): the scale chosen, the
/// rounding of the scaled-back bounds, and a tiny layer computed exactly as
/// its unit-scale twin.
final class CertificationScaleTests: XCTestCase {
    private func gaussian(_ rows: Int, _ columns: Int, seed: UInt64, scale: Double = 1) -> Matrix<Double> {
        let random = CounterRandom(seed: seed, stream: .factorInitialisation)
        var a = Matrix<Double>(rows: rows, columns: columns)
        for i in 0..<rows { for j in 0..<columns { a[i, j] = scale * random.normal(row: i, column: j) } }
        return a
    }

    private func layer(_ w: Matrix<Double>, bias: [Double]? = nil) throws -> ReluLayer<Double> {
        try w.withView { try ReluLayer(weight: $0, bias: bias, slope: 0) }
    }

    func testOrdinaryLayersAreUsedAsGivenAndExtremeOnesScaledByAPowerOfTwo() throws {
        let w = gaussian(5, 4, seed: 1)
        XCTAssertEqual(CertificationScale.factor(layer: try layer(w), maxPointNorm: 3), 1)
        XCTAssertEqual(CertificationScale.factor(layer: try layer(w), maxPointNorm: 0x1p-150), 1)
        let tiny = CertificationScale.factor(layer: try layer(w), maxPointNorm: 0x1p-700)
        XCTAssertEqual(tiny.significand, 1)
        XCTAssert(tiny >= 0x1p690 && tiny <= 0x1p702, "\(tiny)")
        let huge = CertificationScale.factor(layer: try layer(w), maxPointNorm: 0x1p700)
        XCTAssert(huge <= 0x1p-690 && huge >= 0x1p-702, "\(huge)")
        // A zero layer with no bias has no scale to fix.
        let zero = try layer(Matrix(rows: 2, columns: 2))
        XCTAssertEqual(CertificationScale.factor(layer: zero, maxPointNorm: 1e-300), 1)
    }

    func testScaledBackBoundsAreExactOrRoundedUp() {
        XCTAssertEqual(CertificationScale.unscaled(3, by: 0x1p10), 3 * 0x1p-10)
        XCTAssertEqual(CertificationScale.unscaled(0, by: 0x1p10), 0)
        let tiny = Double.leastNonzeroMagnitude
        // 3 * 2^-1074 / 2 rounds (to even) up to 2 * 2^-1074: kept; 5 * 2^-1074 / 2 rounds down: the next value.
        XCTAssertEqual(CertificationScale.unscaled(3 * tiny, by: 2), 2 * tiny)
        XCTAssertEqual(CertificationScale.unscaled(5 * tiny, by: 2), 3 * tiny)
        XCTAssertEqual(CertificationScale.unscaled(7 * tiny, by: 4), 2 * tiny)
    }

    /// `W 2^-600` over unit points is computed as its twin `W s` (`s` a power
    /// of two, the twin inside the range and used as given): every bound is
    /// the twin's divided by the scale, bit for bit, and no longer zero.
    func testATinyLayerIsItsUnitTwinScaled() throws {
        let w = gaussian(7, 5, seed: 2)
        let x = gaussian(40, 5, seed: 3)
        let b = (0..<7).map { Double($0 % 3) - 1 }
        let c = 0x1p-600
        var settings = SpectrumSettings()
        settings.fit.maxSteps = 20
        settings.threads = 1
        settings.keepFactors = true
        let ks = Array(0..<5)
        let tinyW = Matrix(rows: w.rows, columns: w.columns, storage: w.storage.map { $0 * c })
        let tiny = try x.withView {
            try reluSpectrum(layer: try layer(tinyW, bias: b.map { $0 * c }), points: $0, ks: ks, settings: settings)
        }
        let scale = tiny.factorScale
        XCTAssert(scale > 0x1p590 && scale < 0x1p610 && scale.significand == 1, "\(scale)")
        let s = scale * c
        let twinW = Matrix(rows: w.rows, columns: w.columns, storage: w.storage.map { $0 * s })
        let unit = try x.withView {
            try reluSpectrum(layer: try layer(twinW, bias: b.map { $0 * s }), points: $0, ks: ks, settings: settings)
        }
        XCTAssertEqual(unit.factorScale, 1)
        XCTAssertGreaterThan(unit.entries[0].bound, 0)
        for (a, t) in zip(unit.entries, tiny.entries) {
            XCTAssertEqual(t.bound, a.bound / scale, "k = \(a.k)")
            XCTAssertEqual(t.truncationBound, a.truncationBound / scale, "k = \(a.k)")
            XCTAssertEqual(t.sigma, a.sigma / scale, "k = \(a.k)")
            XCTAssertEqual(t.source, a.source, "k = \(a.k)")
        }
        for (a, t) in zip(unit.factors, tiny.factors) {
            XCTAssertEqual(t?.u, a?.u)  // the scaled layer's factors: L = U V / factorScale
            XCTAssertEqual(t?.v, a?.v)
        }
    }
}
