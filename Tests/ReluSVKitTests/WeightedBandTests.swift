import XCTest

@testable import ReluSVKit

/// The weighted regression by bands of `k` (`WeightedBands`, MATH.md §3):
/// the bands partition the requested `k`; every reported bound, the bands'
/// included, is the float64 maximum error of the returned factors (recomputed
/// here by direct loops in float64) for float32 and float64 inputs; the bands
/// only add candidates, so the curve is nowhere above the curve without them.
final class WeightedBandTests: XCTestCase {
    func testBandsPartitionTheRequestedK() {
        let ks = [0, 1, 2, 3, 5, 8, 9, 10, 11, 12, 40]
        let bands = WeightedBands.bands(of: ks, limit: 12, width: 3)
        // The k in 1 ..< 12, in order, in ceil(8 / 3) = 3 runs of sizes 2, 3, 3.
        XCTAssertEqual(bands.map(\.ks), [[1, 2], [3, 5, 8], [9, 10, 11]])
        XCTAssertEqual(bands.map(\.center), [2, 5, 10])
        XCTAssertTrue(WeightedBands.bands(of: ks, limit: 12, width: 0).isEmpty)
        XCTAssertTrue(WeightedBands.bands(of: [0], limit: 12, width: 3).isEmpty)
    }

    /// Lawson's iteration at every `k` where its SVDs are cheap, by bands
    /// where not (also where `N m` is small but `K` SVDs of `N x m` are not:
    /// 1,000 x 1,000 on 4,000 points would take nearly two hours at every `k`);
    /// the bands narrow while their rounds cost at most the fits' budget or
    /// twice the blocked passes, never more than `maxBands` of them, never
    /// wider than the setting.
    func testWeightingFollowsTheWork() {
        let settings = SpectrumSettings()
        func weighting(_ m: Int, _ n: Int, _ N: Int, _ s: SpectrumSettings = SpectrumSettings())
            -> SpectrumPlan.Weighting
        {
            SpectrumPlan.weighting(points: N, outputs: m, inputs: n, ks: Array(0..<min(m, n)), settings: s)
        }
        XCTAssertEqual(weighting(100, 100, 500), .everyK)  // the benchmark suite's layers
        XCTAssertEqual(weighting(100, 100, 50), .everyK)
        XCTAssertEqual(weighting(1024, 1024, 10_000), .bands(width: 128))  // the large benchmark layer
        XCTAssertEqual(weighting(256, 256, 4000), .bands(width: 8))
        XCTAssertEqual(weighting(128, 128, 20_000), .bands(width: 4))  // measurements in docs/engine.md
        XCTAssertEqual(weighting(512, 512, 2000), .bands(width: 16))
        XCTAssertEqual(weighting(1000, 1000, 4000), .bands(width: 128))
        for (m, N) in [(128, 100_000), (512, 2000), (2048, 20_000), (300, 100_000)] {
            guard case .bands(let width) = weighting(m, m, N) else { return XCTFail("\(m) x \(m), N = \(N)") }
            XCTAssertTrue(width <= settings.weightedBandWidth && width & (width - 1) == 0, "\(width)")
            let count = WeightedBands.bands(of: Array(0..<m), limit: min(m, N), width: width).count
            XCTAssertLessThanOrEqual(count, WeightedBands.maxBands, "\(m) x \(m), N = \(N)")
        }
        var narrow = settings
        narrow.weightedBandWidth = 8
        XCTAssertEqual(weighting(1024, 1024, 10_000, narrow), .bands(width: 8))
        var none = settings
        none.weightedBandRounds = 0
        XCTAssertEqual(weighting(1024, 1024, 10_000, none), SpectrumPlan.Weighting.none)
        none = settings
        none.dataCandidates = false
        XCTAssertEqual(weighting(100, 100, 500, none), SpectrumPlan.Weighting.none)
    }

    func check<Scalar: BLASScalar>(_: Scalar.Type, m: Int = 14, n: Int = 12) throws {
        let oracle = WeightedCandidateTests.self
        let N = 80
        let (ws, bs, xs, layer) = try oracle.scalarData(Scalar.self, m: m, n: n, N: N, seed: 97)
        let widen = { (a: [Scalar]) in a.map { Double($0) } }
        var settings = SpectrumSettings()
        settings.keepFactors = true
        settings.fit.maxSteps = 0  // candidates only: the bands' effect alone
        var banded = settings
        banded.weightedLimit = 0  // bands at this size
        banded.weightedBandWidth = 4
        var plain = settings
        plain.weightedRounds = 0  // no weighted candidates at all
        let ks = Array(0..<min(m, n))
        let (curve, without) = try Matrix(rows: N, columns: n, storage: xs).withView { view in
            let problem = try ReluBoundProblem(layer: layer, points: view)
            XCTAssertTrue(
                SpectrumPlan.weighting(points: N, outputs: m, inputs: n, ks: ks, settings: banded).banded)
            return (
                try reluSpectrum(of: problem, ks: ks, settings: banded),
                try reluSpectrum(of: problem, ks: ks, settings: plain)
            )
        }
        var bandWins = 0
        for (e, f) in zip(curve.entries, curve.factors) {
            let factors = try XCTUnwrap(f)
            XCTAssertLessThanOrEqual(factors.k, e.k)
            let exact = oracle.errors(
                w: widen(ws), b: widen(bs), x: widen(xs), u: widen(factors.u), v: widen(factors.v), m: m, n: n,
                k: factors.k, P: 1
            ).max()!
            XCTAssertEqual(e.bound, exact, accuracy: 1e-9 * exact + 1e-14, "k = \(e.k), \(Scalar.self)")
            if e.source == .weightedRRR { bandWins += 1 }
        }
        for (a, c) in zip(curve.entries, without.entries) {
            XCTAssertLessThanOrEqual(a.bound, c.bound, "k = \(a.k): the bands only add candidates")
        }
        XCTAssertGreaterThan(bandWins, 0, "no band candidate was the best at any k (\(Scalar.self))")
    }

    func testBandBoundsAreTheFloat64ErrorsOfTheirFactors() throws {
        try check(Double.self)
        try check(Float.self)
        // n >= 2 m: the bands' rounds ranked from the pre-activations.
        try check(Double.self, m: 8, n: 20)
        try check(Float.self, m: 8, n: 20)
    }
}
