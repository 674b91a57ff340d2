import XCTest

@testable import ReluSVKit

/// `SampleSummary` against SciPy's definitions, on hand-made data.
final class SampleSummaryTests: XCTestCase {
    let data: [Double] = [10, 1, 7, 3, 100, 2, 5, 4, 6, 8]  // sorted: 1 2 3 4 5 6 7 8 10 100

    func testTrimmedMeanCutsFloorOfTrimTimesCountAtEachEnd() throws {
        // scipy.stats.trim_mean(data, 0.1): cut int(0.1 * 10) = 1 per end -> mean of 2..10
        XCTAssertEqual(try SampleSummary(data, trim: 0.1).estimate, 45.0 / 8, accuracy: 1e-14)
        // trim 0.25: cut int(2.5) = 2 -> mean of 3 4 5 6 7 8
        XCTAssertEqual(try SampleSummary(data, trim: 0.25).estimate, 33.0 / 6, accuracy: 1e-14)
        // trim 0.09: cut int(0.9) = 0 -> the plain mean
        XCTAssertEqual(try SampleSummary(data, trim: 0.09).estimate, 146.0 / 10, accuracy: 1e-14)
        // trim 0.45 on 10 values: cut 4 -> the middle two, 5 and 6
        XCTAssertEqual(try SampleSummary(data, trim: 0.45).estimate, 5.5, accuracy: 1e-14)
    }

    func testPlainMeanAndItsStandardError() throws {
        let s = try SampleSummary(data, trim: 0.1)
        XCTAssertEqual(s.mean, 14.6, accuracy: 1e-13)
        // s^2 = sum (x - 14.6)^2 / 9, by hand: sum x^2 = 10304, so (10304 - 10 * 14.6^2) / 9
        let variance = (10304 - 10 * 14.6 * 14.6) / 9
        XCTAssertEqual(s.meanStandardError, (variance / 10).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(s.count, 10)
    }

    func testTukeyMcLaughlinStandardError() throws {
        // winsorised at one value per end: 2 2 3 4 5 6 7 8 10 10 (mean 5.7)
        let w: [Double] = [2, 2, 3, 4, 5, 6, 7, 8, 10, 10]
        let mean = 5.7
        let sw = (w.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 9).squareRoot()
        let s = try SampleSummary(data, trim: 0.1)
        XCTAssertEqual(s.standardError, sw / ((1 - 2.0 / 10) * 10.0.squareRoot()), accuracy: 1e-13)
    }

    func testTrimZeroGivesTheMeanExactly() throws {
        let values = (0..<1000).map { sin(Double($0)) * 1e3 + 1 / Double($0 + 1) }
        let s = try SampleSummary(values, trim: 0)
        XCTAssertEqual(s.estimate, s.mean)
        XCTAssertEqual(s.standardError, s.meanStandardError)
    }

    func testSingleValueAndOrderIndependence() throws {
        let one = try SampleSummary([3.5], trim: 0.1)
        XCTAssertEqual(one.estimate, 3.5)
        XCTAssertEqual(one.standardError, 0)
        XCTAssertEqual(try SampleSummary(data.reversed(), trim: 0.1), try SampleSummary(data.sorted(), trim: 0.1))
    }

    func testInvalidArguments() {
        for trim in [-0.1, 0.5, 0.7, Double.nan] {
            XCTAssertThrowsError(try SampleSummary(data, trim: trim), "trim \(trim)")
        }
        XCTAssertThrowsError(try SampleSummary([], trim: 0.1))
    }
}
