import XCTest

@testable import ReluSVKit

/// The engine refuses every bad request on its own (without the C surface),
/// with the `EngineError` case whose status the caller sees and a message
/// naming the value.
final class RequestCheckTests: XCTestCase {
    private func expect(
        _ expected: EngineError, file: StaticString = #filePath, line: UInt = #line,
        _ body: () throws -> Void
    ) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual(error as? EngineError, expected, file: file, line: line)
        }
    }

    private func matrix(_ rows: Int, _ columns: Int, _ value: (Int, Int) -> Double = { i, j in Double(i + 2 * j) - 3 })
        -> Matrix<Double>
    {
        var a = Matrix<Double>(rows: rows, columns: columns)
        for i in 0..<rows { for j in 0..<columns { a[i, j] = value(i, j) } }
        return a
    }

    /// The automatic fit stride is a power of two in `1 ... 2^ceil(log2 count)`
    /// for every work-to-capacity ratio, including a capacity of 0, a
    /// subnormal one (a `timeBudget` of 5e-324 s) and an infinite one.
    func testAutomaticStrideStaysInRangeForEveryRatio() {
        let capacities = [0, Double.leastNonzeroMagnitude, 1e-300, 9e-11, 1, 1e300, .infinity]
        for count in [1, 2, 3, 100, 1024, 1025] {
            let widest = 1 << Int(log2(Double(count)).rounded(.up))
            for work in [0, 1, 1e12, 1e300, Double.greatestFiniteMagnitude] {
                for capacity in capacities {
                    let s = SpectrumPlan.automaticStride(work: work, capacity: capacity, count: count)
                    XCTAssert(s >= 1 && s <= widest && s & (s - 1) == 0, "\(work) / \(capacity), \(count): \(s)")
                }
            }
        }
        XCTAssertEqual(SpectrumPlan.automaticStride(work: 3, capacity: 1, count: 100), 4)
        XCTAssertEqual(SpectrumPlan.automaticStride(work: 1, capacity: 1, count: 100), 1)
        XCTAssertEqual(SpectrumPlan.automaticStride(work: 1e12, capacity: 1e-300, count: 100), 128)
    }

    func testRanksAreCheckedForRangeRepeatsCountAndEmptiness() {
        let settings = SpectrumSettings()
        let range = "is out of range: k must lie in [0, min(m, n) - 1] = [0, 2]"
        expect(.invalidArgument("k = 3 \(range)")) { try ReluBoundRequest.check(ks: [0, 3], p: 3, settings: settings) }
        expect(.invalidArgument("k = -1 \(range)")) { try ReluBoundRequest.check(ks: [-1], p: 3, settings: settings) }
        expect(.invalidArgument("ks contains repeated values")) {
            try ReluBoundRequest.check(ks: [1, 2, 1], p: 3, settings: settings)
        }
        expect(.invalidArgument("ks is empty")) { try ReluBoundRequest.check(ks: [], p: 3, settings: settings) }
        expect(.invalidArgument("k_count = 4 exceeds min(m, n) = 3: the k must be distinct")) {
            try ReluBoundRequest.check(ks: [0, 1, 2, 2], p: 3, settings: settings)
        }
        // A caller's uint64_t beyond Int is named as given, not clamped.
        expect(.invalidArgument("k = 18446744073709551615 \(range)")) {
            try ReluBoundRequest.checkRank(UInt64.max, p: 3)
        }
        XCTAssertNoThrow(try ReluBoundRequest.check(ks: [2, 0], p: 3, settings: settings))
    }

    func testSettingsAreCheckedWithTheRanks() {
        var settings = SpectrumSettings()
        settings.fit.batchSize = 0
        expect(.invalidArgument("batch_size must be positive, got 0")) {
            try ReluBoundRequest.check(ks: [0], p: 3, settings: settings)
        }
        settings = SpectrumSettings()
        settings.timeBudget = -1
        expect(.invalidArgument("time_budget must be finite and >= 0, got -1.0")) {
            try ReluBoundRequest.check(ks: [0], p: 3, settings: settings)
        }
        settings = SpectrumSettings()
        settings.fit.learningRate = .nan
        expect(.invalidArgument("learning_rate must be positive, got nan")) {
            try ReluBoundRequest.check(ks: [0], p: 3, settings: settings)
        }
    }

    func testPointsAndGroupsAreChecked() {
        expect(.shape("X has 4 columns but W has 5 columns (inputs); rows of X are points")) {
            try ReluBoundRequest.checkData(rows: 6, columns: 4, inputs: 5, groupSize: 1)
        }
        expect(.empty("X has no points (0 rows)")) {
            try ReluBoundRequest.checkData(rows: 0, columns: 5, inputs: 5, groupSize: 1)
        }
        expect(.invalidArgument("group_size must be at least 1, got 0")) {
            try ReluBoundRequest.checkData(rows: 6, columns: 5, inputs: 5, groupSize: 0)
        }
        expect(.shape("X has 6 rows, not a multiple of group_size = 4 (each point is group_size consecutive rows)")) {
            try ReluBoundRequest.checkData(rows: 6, columns: 5, inputs: 5, groupSize: 4)
        }
        XCTAssertNoThrow(try ReluBoundRequest.checkData(rows: 6, columns: 5, inputs: 5, groupSize: 3))
        expect(.invalidArgument("group_size needs X (the sphere sample has single-row points)")) {
            try ReluBoundRequest.checkSphere(points: 100, groupSize: 2)
        }
        expect(.invalidArgument("sphere_points must be positive when X is not given, got 0")) {
            try ReluBoundRequest.checkSphere(points: 0, groupSize: 1)
        }
        expect(.invalidArgument("sphere_points must be positive when X is not given, got 0")) {
            let _: Matrix<Double> = try sphereSample(points: 0, dimension: 3, seed: 0)
        }
    }

    func testTheProblemAndTheSpectrumRefuseOnTheirOwn() throws {
        let w = matrix(3, 4)
        let x = matrix(6, 4)
        let wrong = matrix(6, 5)
        let layer = try w.withView { try ReluLayer(weight: $0, bias: nil, slope: 0) }
        expect(.shape("X has 5 columns but W has 4 columns (inputs); rows of X are points")) {
            _ = try wrong.withView { try ReluBoundProblem(layer: layer, points: $0) }
        }
        expect(.shape("X has 6 rows, not a multiple of group_size = 4 (each point is group_size consecutive rows)")) {
            _ = try x.withView { try ReluBoundProblem(layer: layer, points: $0, groupSize: 4) }
        }
        try x.withView { points in
            let problem = try ReluBoundProblem(layer: layer, points: points, groupSize: 2)
            XCTAssertEqual(problem.groups, 3)
            expect(.invalidArgument("ks contains repeated values")) { _ = try reluSpectrum(of: problem, ks: [1, 1]) }
            expect(.invalidArgument("k = 3 is out of range: k must lie in [0, min(m, n) - 1] = [0, 2]")) {
                _ = try reluSpectrum(of: problem, ks: [3])
            }
        }
    }

    func testWeightBiasAndFactorsAreChecked() throws {
        let empty = Matrix<Double>(rows: 0, columns: 4)
        expect(.empty("W has no rows (it is 0 x 4)")) { _ = try empty.withView { try singularValues(of: $0) } }
        expect(.empty("W has no rows (it is 0 x 4)")) {
            _ = try empty.withView { try ReluLayer(weight: $0, bias: nil, slope: 0) }
        }
        let w = matrix(3, 4)
        let x = matrix(5, 4)
        expect(.shape("b has length 2 but W has 3 rows (outputs)")) {
            _ = try w.withView { try ReluLayer(weight: $0, bias: [0, 0], slope: 0) }
        }
        expect(.invalidArgument("rank = 4 is out of range [0, min(m, n)] = [0, 3]")) {
            try checkTruncationRank(4, rows: 3, columns: 4)
        }
        let layer = try w.withView { try ReluLayer(weight: $0, bias: nil, slope: 0) }
        try x.withView { points in
            let problem = try ReluBoundProblem(layer: layer, points: points)
            let u = matrix(3, 2)
            let v = matrix(2, 4)
            let badV = matrix(3, 4)
            var nanV = v
            nanV[1, 3] = .nan
            expect(.shape("U is 3 x 2 and V is 3 x 4; expected 3 x k and k x 4")) {
                _ = try u.withView { uv in try badV.withView { try problem.lossAndGradient(u: uv, v: $0) } }
            }
            expect(.nonFinite("V contains NaN or infinity at row 1, column 3")) {
                _ = try u.withView { uv in try nanV.withView { try problem.lossAndGradient(u: uv, v: $0) } }
            }
            // The checked entry computes what the factors' entry computes.
            let checked = try u.withView { uv in try v.withView { try problem.lossAndGradient(u: uv, v: $0) } }
            let direct = problem.lossAndGradient(factors: RankFactors(k: 2, m: 3, n: 4, u: u.storage, v: v.storage))
            XCTAssertEqual(checked.loss, direct.loss)
            XCTAssertEqual(checked.gradV, direct.gradV)
        }
    }

    func testMemoryEstimateReadsTheSettingsItIsGiven() {
        // m = 30, n = 20, N = 1000 float64 rows: each chain adds 2 m scalars per row.
        var four = SpectrumSettings()
        var eight = SpectrumSettings()
        four.chains = 4
        eight.chains = 8
        let bytes = { (s: SpectrumSettings) in
            ReluBoundRequest.memoryBytes(
                outputs: 30, inputs: 20, points: 1000, ks: [1, 2], settings: s, scalarBytes: 8)
        }
        XCTAssertEqual(bytes(eight) - bytes(four), 8 * 1000 * 30 * 2 * 4)
        var keep = four
        keep.keepFactors = true
        XCTAssertEqual(bytes(keep) - bytes(four), Double((1 + 2) * (30 + 20) * (8 + 8)))
    }

    func testWidthsDiameterAndAccumulatorsRefuseOnTheirOwn() throws {
        let none = Matrix<Double>(rows: 0, columns: 3)
        expect(.empty("x has no rows: the width of an empty set is undefined")) {
            _ = try none.withView { try gaussianMeanWidth(of: $0, samples: 8, seed: 0) }
        }
        expect(.invalidArgument("trim must lie in [0, 0.5), got 0.5")) {  // the trim first, as documented
            _ = try none.withView { try gaussianMeanWidth(of: $0, samples: 8, seed: 0, trim: 0.5) }
        }
        expect(.empty("x has no rows: the diameter of an empty set is undefined")) {
            _ = try none.withView { try diameter(of: $0) }
        }
        let accumulator = try WidthAccumulator<Double>(dimension: 4, samples: 8, seed: 1)
        expect(.empty("no points have been added to the accumulator: the width of an empty set is undefined")) {
            _ = try accumulator.sampleWidths(spherical: false)
        }
        expect(.shape("x has 3 columns but the accumulator has dimension 4")) {
            try matrix(2, 3).withView { try accumulator.update($0) }
        }
        var maxima = [Double](repeating: 1, count: 8)
        maxima[5] = .nan
        expect(.nonFinite("extremes contain NaN")) {
            try accumulator.merge(
                maxima: maxima, minima: [Double](repeating: 0, count: 8), count: 3, dimension: 4, seed: 1)
        }
    }

    func testConvolutionGeometryKernelAndTopAreChecked() throws {
        expect(.empty("the kernel has no output channels (0 rows)")) {
            _ = try CircularConvolution(
                outChannels: 0, inChannels: 2, kernelHeight: 3, kernelWidth: 3, height: 5, width: 5)
        }
        let g = try CircularConvolution(
            outChannels: 2, inChannels: 3, kernelHeight: 3, kernelWidth: 3, height: 4, width: 4)
        expect(
            .shape(
                "the kernel matrix is 2 x 26 but (C_out, C_in kh kw) = (2, 27) "
                    + "for in_channels x kernel_height x kernel_width = 3 x 3 x 3")
        ) {
            try g.checkKernel(rows: 2, columns: 26)
        }
        expect(.invalidArgument("k = 33 exceeds H W min(C_out, C_in) = 32")) { try g.checkTop(33) }
        expect(.invalidArgument("k = 0 is out of range [1, H W min(C_out, C_in)] = [1, 32]")) { try g.checkTop(0) }
        let kernel = matrix(2, 26)
        expect(
            .shape(
                "the kernel matrix is 2 x 26 but (C_out, C_in kh kw) = (2, 27) "
                    + "for in_channels x kernel_height x kernel_width = 3 x 3 x 3")
        ) {
            _ = try kernel.withView { try circularConvolutionSingularValues(kernel: $0, geometry: g) }
        }
    }
}
