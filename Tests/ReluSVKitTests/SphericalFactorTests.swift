import XCTest

@testable import ReluSVKit

/// `c_n = E||g||` of Lemma 13.
final class SphericalFactorTests: XCTestCase {
    func testClosedFormsForSmallDimensions() {
        XCTAssertEqual(gaussianToSphericalFactor(dimension: 1), (2 / Double.pi).squareRoot(), accuracy: 1e-16)
        XCTAssertEqual(gaussianToSphericalFactor(dimension: 2), (Double.pi / 2).squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(gaussianToSphericalFactor(dimension: 3), 2 * (2 / Double.pi).squareRoot(), accuracy: 1e-15)
    }

    /// `Gamma(x + 1) = x Gamma(x)` gives `c_{n+2} = c_n (n + 1) / n`; checked on
    /// both sides of the switch from `tgamma` to the asymptotic series.
    func testRecursionAcrossTheWholeRange() {
        for n in Array(1...400) + [1000, 12345, 1 << 20, 1 << 40] {
            let ratio = gaussianToSphericalFactor(dimension: n + 2) / gaussianToSphericalFactor(dimension: n)
            // a few ulps per value
            XCTAssertEqual(ratio, Double(n + 1) / Double(n), accuracy: 2e-15 * Double(n + 1) / Double(n), "n = \(n)")
        }
    }

    func testLargeDimensionAsymptotics() {
        // c_n = sqrt(n - 1/2) (1 + 1/(16 n^2) + O(n^-3))
        for n in [1000, 1_000_000, 1 << 40] {
            let x = Double(n)
            XCTAssertEqual(
                gaussianToSphericalFactor(dimension: n), (x - 0.5).squareRoot() * (1 + 1 / (16 * x * x)),
                accuracy: 1e-15 * x.squareRoot() + 2 / (x * x * x).squareRoot())
        }
    }

    func testMonteCarloMeanNorm() {
        // E||g|| for g in R^7 from 100,000 counter-based normal vectors, within 4 SE.
        let n = 7
        let m = 100_000
        let random = CounterRandom(seed: 77, stream: .sphereSample)
        var sum = 0.0
        var sumSquares = 0.0
        for i in 0..<m {
            let norm = (0..<n).reduce(0.0) { $0 + pow(random.normal(row: i, column: $1), 2) }.squareRoot()
            sum += norm
            sumSquares += norm * norm
        }
        let mean = sum / Double(m)
        let se = ((sumSquares / Double(m) - mean * mean) / Double(m)).squareRoot()
        XCTAssertLessThan(abs(mean - gaussianToSphericalFactor(dimension: n)), 4 * se)
    }
}
