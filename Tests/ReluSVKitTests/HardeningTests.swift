import XCTest

@testable import ReluSVKit

#if canImport(Glibc)
import Glibc
#endif

/// The engine's memory limit, process-wide cancellation, checksum and overflow-free summaries.
final class HardeningTests: XCTestCase {
    override func tearDown() { MemoryBudget.setLimit(0) }

    func testMemoryLimitParsingAndOverride() throws {
        XCTAssertEqual(MemoryBudget.parse("4096"), 4096)
        XCTAssertEqual(MemoryBudget.parse("512M"), 512 << 20)
        XCTAssertEqual(MemoryBudget.parse(" 2g "), 2 << 30)
        XCTAssertEqual(MemoryBudget.parse("1T"), 1 << 40)
        XCTAssertNil(MemoryBudget.parse("-3"))
        XCTAssertNil(MemoryBudget.parse("many"))
        XCTAssertEqual(MemoryBudget.parse("99999999999999999999K"), nil)  // not an Int: refused, not wrapped
        MemoryBudget.setLimit(1 << 20)
        XCTAssertEqual(MemoryBudget.limit, 1 << 20)
        XCTAssertNoThrow(try MemoryBudget.require(bytes: Double(1 << 20), for: "exactly the limit"))
        XCTAssertThrowsError(try MemoryBudget.require(bytes: Double(1 << 20) + 1, for: "one byte more")) { error in
            guard case EngineError.outOfMemory(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("one byte more"), message)
        }
        XCTAssertThrowsError(try MemoryBudget.require(bytes: .infinity, for: "infinite"))
        MemoryBudget.setLimit(0)
        XCTAssertEqual(
            MemoryBudget.limit,
            min(
                MemoryBudget.environmentLimit ?? MemoryBudget.physicalMemory,
                MemoryBudget.addressSpaceHeadroom ?? Int.max))
    }

    func testScratchBufferRefusesBeforeAllocating() throws {
        MemoryBudget.setLimit(1 << 16)
        XCTAssertThrowsError(try ScratchBuffer<Double>(count: 1 << 14, purpose: "test scratch")) { error in
            guard case EngineError.outOfMemory = error else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try ScratchBuffer<Double>(count: 1 << 12, purpose: "small").count, 1 << 12)
    }

    func testAccumulatorFootprintIsCheckedAndScratchIsBounded() throws {
        // S = 2^24 directions: the block scratch is S x 1 products, not S x 64.
        let need = WidthAccumulator<Double>.memoryNeeded(dimension: 1, samples: 1 << 24)
        XCTAssertLessThan(need, Double(1 << 30))
        MemoryBudget.setLimit(Int(need) - 1)
        XCTAssertThrowsError(try WidthAccumulator<Double>(dimension: 1, samples: 1 << 24, seed: 0))
    }

    func testCRC32CheckValue() {
        // The standard check value of CRC-32/ISO-HDLC (zlib's crc32).
        let bytes = Array("123456789".utf8)
        XCTAssertEqual(bytes.withUnsafeBytes { CRC32.checksum($0) }, 0xCBF4_3926)
    }

    func testCancelAllStopsARunningComputationInAnotherThread() throws {
        let x = randomMatrix(rows: 4000, columns: 200)
        final class Outcome: @unchecked Sendable {
            var error: Error?
            var finished = false
        }
        let outcome = Outcome()
        let started = Progress.silent  // the generation before cancelAll
        var thread = pthread_t()
        let box = Unmanaged.passRetained(
            ThreadBody {
                do {
                    _ = try x.withView { try diameter(of: $0, blockRows: 64) }
                    outcome.finished = true
                } catch { outcome.error = error }
            }
        ).toOpaque()
        pthread_create(
            &thread, nil,
            { raw in
                Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue().body()
                return nil
            }, box)
        usleep(200_000)
        Cancellation.cancelAll()
        pthread_join(thread, nil)
        XCTAssertFalse(outcome.finished)
        XCTAssertEqual(outcome.error as? EngineError, .cancelled)
        XCTAssertThrowsError(try started.checkCancelled())  // a reporter from before is cancelled
        XCTAssertNoThrow(try Progress.silent.checkCancelled())  // new calls run normally
        XCTAssertNoThrow(try x.withView { try diameter(of: $0.rows(0..<50)) })
    }

    func testSummaryIsExactUnderScalingByPowersOfTwo() throws {
        var generator = SystemRandomNumberGenerator()
        let values = (0..<101).map { _ in Double.random(in: 0.5...3, using: &generator) }
        let base = try SampleSummary(values, trim: 0.1)
        for exponent in [-900, 500, 1015] {
            let c = Double(sign: .plus, exponent: exponent, significand: 1)
            let scaled = try SampleSummary(values.map { $0 * c }, trim: 0.1)
            XCTAssertEqual(scaled.estimate, base.estimate * c)  // bit for bit
            XCTAssertEqual(scaled.mean, base.mean * c)
            XCTAssertEqual(scaled.standardError, base.standardError * c)
            XCTAssertEqual(scaled.meanStandardError, base.meanStandardError * c)
        }
        XCTAssertThrowsError(try SampleSummary([1, .infinity], trim: 0)) { error in
            guard case EngineError.nonFinite(let message) = error, message.hasPrefix("floating-point overflow") else {
                return XCTFail("\(error)")
            }
        }
        // Widths near the largest Double: the mean and its standard error are representable and returned.
        let huge = try SampleSummary([0, .greatestFiniteMagnitude, 0, .greatestFiniteMagnitude], trim: 0)
        XCTAssertEqual(huge.mean, Double.greatestFiniteMagnitude / 2)
        XCTAssertTrue(huge.meanStandardError.isFinite)
    }

    private func randomMatrix(rows: Int, columns: Int) -> Matrix<Double> {
        var m = Matrix<Double>(rows: rows, columns: columns)
        m.withUnsafeMutableBufferPointer {
            CounterRandom(seed: 1, stream: .sphereSample).fillNormals(
                $0.baseAddress!, firstRow: 0, rows: rows, columns: columns)
        }
        return m
    }
}

private final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}
