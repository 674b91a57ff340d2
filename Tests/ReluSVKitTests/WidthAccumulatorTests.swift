import XCTest

@testable import ReluSVKit

/// The Gaussian mean width engine against MATH.md section 4.
///
/// Statistical checks use the plain mean (trim 0) and allow 4 reported
/// standard errors; exact identities (streaming, merging, serialisation)
/// are checked for equality or, where BLAS rounding enters, within the
/// product rounding bound `k eps |g| |x|`.
final class WidthAccumulatorTests: XCTestCase {
    /// Points given row-major, as a view for the duration of `body`.
    func withView<R>(_ data: [Double], columns: Int, _ body: (MatrixView<Double>) throws -> R) rethrows -> R {
        try data.withUnsafeBufferPointer {
            try body(MatrixView(base: $0.baseAddress!, rows: data.count / columns, columns: columns))
        }
    }

    func randomPoints(rows: Int, columns: Int, seed: UInt64) -> [Double] {
        var out = [Double](repeating: 0, count: rows * columns)
        out.withUnsafeMutableBufferPointer {
            CounterRandom(seed: seed, stream: .sphereSample).fillNormals(
                $0.baseAddress!, firstRow: 0, rows: rows, columns: columns)
        }
        return out
    }

    func testSegmentWidth() throws {
        let a: [Double] = [1.5, -2, 0.5]
        let exact = 2 * (a.reduce(0) { $0 + $1 * $1 }).squareRoot() * (2 / Double.pi).squareRoot()
        let r = try withView(a + a.map { -$0 }, columns: 3) {
            try gaussianMeanWidth(of: $0, samples: 20000, seed: 1, trim: 0)
        }
        XCTAssertLessThan(abs(r.summary.mean - exact), 4 * r.summary.meanStandardError)
        XCTAssertEqual(r.sampleWidths.count, 20000)
    }

    func testCubeVerticesWidth() throws {
        let n = 5
        var cube: [Double] = []
        for i in 0..<(1 << n) { for j in 0..<n { cube.append(i >> j & 1 == 1 ? 1 : -1) } }
        let exact = 2 * Double(n) * (2 / Double.pi).squareRoot()
        let r = try withView(cube, columns: n) { try gaussianMeanWidth(of: $0, samples: 20000, seed: 2, trim: 0) }
        XCTAssertLessThan(abs(r.summary.mean - exact), 4 * r.summary.meanStandardError)
        // Float computes the same widths (products of +-1 with float-rounded directions)
        let cubeF = cube.map { Float($0) }
        let rf = try cubeF.withUnsafeBufferPointer {
            try gaussianMeanWidth(
                of: MatrixView(base: $0.baseAddress!, rows: 1 << n, columns: n), samples: 20000, seed: 2, trim: 0)
        }
        XCTAssertEqual(rf.summary.mean, r.summary.mean, accuracy: 1e-5 * r.summary.mean)
    }

    func testSinglePointHasWidthZeroAndSphericalWidthsAreScaled() throws {
        let r = try withView([3, 1, 4], columns: 3) { try gaussianMeanWidth(of: $0, samples: 50, seed: 3) }
        XCTAssertEqual(r.sampleWidths, Array(repeating: 0, count: 50))
        // spherical width of direction j = Gaussian width / ||g_j||
        let x = randomPoints(rows: 30, columns: 4, seed: 9)
        let g = try withView(x, columns: 4) { try gaussianMeanWidth(of: $0, samples: 40, seed: 3, trim: 0) }
        let s = try withView(x, columns: 4) {
            try gaussianMeanWidth(of: $0, samples: 40, seed: 3, trim: 0, spherical: true)
        }
        let random = CounterRandom(seed: 3, stream: .widthDirections)
        for j in 0..<40 {
            let norm = (0..<4).reduce(0.0) { $0 + pow(random.normal(row: j, column: $1), 2) }.squareRoot()
            XCTAssertEqual(s.sampleWidths[j] * norm, g.sampleWidths[j], accuracy: 1e-12 * g.sampleWidths[j])
        }
    }

    func testSampleWidthsAreMaxMinusMinOverTheDirections() throws {
        let n = 3
        let x = randomPoints(rows: 25, columns: n, seed: 4)
        let r = try withView(x, columns: n) { try gaussianMeanWidth(of: $0, samples: 30, seed: 8, trim: 0) }
        let random = CounterRandom(seed: 8, stream: .widthDirections)
        for j in 0..<30 {
            let products = (0..<25).map { i in
                (0..<n).reduce(0.0) { $0 + random.normal(row: j, column: $1) * x[i * n + $1] }
            }
            XCTAssertEqual(r.sampleWidths[j], products.max()! - products.min()!, accuracy: 1e-12)
        }
    }

    func testStreamingMatchesOneCallAndMergeIsOrderIndependent() throws {
        let n = 6
        let rows = 700
        let x = randomPoints(rows: rows, columns: n, seed: 5)
        // blocks of 512
        let one = try withView(x, columns: n) { try gaussianMeanWidth(of: $0, samples: 2048, seed: 4, trim: 0) }
        let cuts = [0, 1, 130, 131, 600, rows]
        let streamed = try WidthAccumulator<Double>(dimension: n, samples: 2048, seed: 4)
        var parts: [WidthAccumulator<Double>] = []
        for k in 0..<(cuts.count - 1) {
            let piece = Array(x[(cuts[k] * n)..<(cuts[k + 1] * n)])
            try withView(piece, columns: n) { try streamed.update($0) }
            let part = try WidthAccumulator<Double>(dimension: n, samples: 2048, seed: 4)
            try withView(piece, columns: n) { try part.update($0) }
            parts.append(part)
        }
        XCTAssertEqual(streamed.count, rows)
        // BLAS may round a product differently in another call shape: the
        // widths agree within 2 k eps ||g_j|| max_i ||x_i|| (k = n).
        let random = CounterRandom(seed: 4, stream: .widthDirections)
        let maxNorm = (0..<rows).map { i in (0..<n).reduce(0.0) { $0 + x[i * n + $1] * x[i * n + $1] }.squareRoot() }
            .max()!
        for (j, (a, b)) in zip(try streamed.sampleWidths(spherical: false), one.sampleWidths).enumerated() {
            let gNorm = (0..<n).reduce(0.0) { $0 + pow(random.normal(row: j, column: $1), 2) }.squareRoot()
            XCTAssertEqual(a, b, accuracy: 2 * Double(n) * Double.ulpOfOne * gNorm * maxNorm)
        }
        // merging in two different orders gives identical extremes
        let forward = try WidthAccumulator<Double>(dimension: n, samples: 2048, seed: 4)
        for p in parts { try forward.merge(p) }
        let backward = try WidthAccumulator<Double>(dimension: n, samples: 2048, seed: 4)
        for p in parts.reversed() { try backward.merge(p) }
        XCTAssertEqual(forward.maxima, backward.maxima)
        XCTAssertEqual(forward.minima, backward.minima)
        XCTAssertEqual(forward.maxima, streamed.maxima)
        XCTAssertEqual(forward.count, rows)
    }

    func testSerialisationRoundTripAndCorruptStates() throws {
        let n = 4
        let x = randomPoints(rows: 50, columns: n, seed: 6)
        let acc = try WidthAccumulator<Float>(dimension: n, samples: 7, seed: UInt64.max)
        let xf = x.map { Float($0) }
        try xf.withUnsafeBufferPointer { try acc.update(MatrixView(base: $0.baseAddress!, rows: 50, columns: n)) }
        let state = AnyWidthAccumulator.float(acc)
        let bytes = state.serialized()
        XCTAssertEqual(bytes.count, state.serializedSize)
        let copy = try bytes.withUnsafeBytes { try AnyWidthAccumulator(serialized: $0) }
        XCTAssertEqual(copy.precisionBits, 32)
        XCTAssertEqual(copy.maxima, acc.maxima)
        XCTAssertEqual(copy.minima, acc.minima)
        XCTAssertEqual(copy.count, 50)
        XCTAssertEqual(copy.seed, UInt64.max)
        XCTAssertEqual(try copy.estimate(trim: 0.1, spherical: false), try acc.estimate(trim: 0.1, spherical: false))

        // Mutations of the fields are resealed (the CRC-32 recomputed) so that the field checks are reached.
        func rejects(_ mutate: (inout [UInt8]) -> Void, _ fragment: String, reseal: Bool = true, line: UInt = #line) {
            var b = bytes
            mutate(&b)
            if reseal, b.count == bytes.count {
                let crc = b.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<(b.count - 4)])) }
                withUnsafeBytes(of: crc.littleEndian) { b.replaceSubrange((b.count - 4)..<b.count, with: $0) }
            }
            XCTAssertThrowsError(try b.withUnsafeBytes { try AnyWidthAccumulator(serialized: $0) }, line: line) {
                error in
                guard case EngineError.corruptState(let message) = error else { return XCTFail("\(error)", line: line) }
                XCTAssertTrue(message.contains(fragment), message, line: line)
            }
        }
        rejects({ $0[0] = 0 }, "magic")
        rejects({ $0[4] = 3 }, "version")
        rejects({ $0[12] = 1 }, "reserved")
        rejects({ $0[33] ^= 1 }, "checksum", reseal: false)
        rejects({ $0[8] = 16 }, "precision")
        rejects({ $0.removeLast() }, "do not match")
        rejects({ $0 = Array($0.prefix(47)) }, "shorter")
        rejects(
            { b in withUnsafeBytes(of: Double.nan.bitPattern.littleEndian) { b.replaceSubrange(48..<56, with: $0) } },
            "NaN")
        rejects({ b in for k in 16..<24 { b[k] = 0 } }, "out of range")
    }

    func testMismatchesAndBadDataLeaveTheStateUnchanged() throws {
        let acc = try WidthAccumulator<Double>(dimension: 3, samples: 5, seed: 1)
        try withView([1, 2, 3, 4, 5, 6], columns: 3) { try acc.update($0) }
        let (maxima, minima) = (acc.maxima, acc.minima)
        XCTAssertThrowsError(try withView([1, 2, 3, 4], columns: 2) { try acc.update($0) })
        XCTAssertThrowsError(try withView([1, 2, 3, 4, .nan, 6, 7, 8, 9], columns: 3) { try acc.update($0) }) { error in
            XCTAssertEqual(error as? EngineError, .nonFiniteData(row: 1, column: 1))
        }
        XCTAssertThrowsError(try acc.merge(WidthAccumulator<Double>(dimension: 3, samples: 5, seed: 2)))
        XCTAssertThrowsError(try acc.merge(WidthAccumulator<Double>(dimension: 3, samples: 6, seed: 1)))
        // cancellation after the first block (blocks of 2^20 / 2^14 = 64 rows)
        let big = try WidthAccumulator<Double>(dimension: 2, samples: 1 << 14, seed: 1)
        let x = randomPoints(rows: 300, columns: 2, seed: 1)
        var calls = 0
        let stop = Progress(total: 300) { _, _ in
            calls += 1
            return calls < 2
        }
        XCTAssertThrowsError(try withView(x, columns: 2) { try big.update($0, progress: stop) }) { error in
            XCTAssertEqual(error as? EngineError, .cancelled)
        }
        XCTAssertEqual(big.count, 0)
        XCTAssertTrue(big.maxima.allSatisfy { $0 == -.infinity })
        XCTAssertEqual(acc.maxima, maxima)
        XCTAssertEqual(acc.minima, minima)
        XCTAssertEqual(acc.count, 2)
    }

    func testArgumentChecks() {
        XCTAssertThrowsError(try WidthAccumulator<Double>(dimension: 0, samples: 5, seed: 1))
        XCTAssertThrowsError(try WidthAccumulator<Double>(dimension: 3, samples: 0, seed: 1))
        // 2^60 directions
        XCTAssertThrowsError(try WidthAccumulator<Double>(dimension: 1 << 30, samples: 1 << 30, seed: 1))
        XCTAssertThrowsError(try WidthAccumulator<Double>(dimension: 1 << 20, samples: 1 << 20, seed: 1)) { error in
            // 8 TB: an error, not a trap
            guard case EngineError.outOfMemory = error else { return XCTFail("\(error)") }
        }
        let empty = try? WidthAccumulator<Double>(dimension: 2, samples: 3, seed: 1)
        XCTAssertThrowsError(try empty!.sampleWidths(spherical: false))
    }

    func testRowExtremesAgainstAPlainLoop() {
        for count in [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 100] {
            let d = (0..<count).map { sin(Double($0) * 1.7) * Double($0 + 1) }
            let f = d.map { Float($0) }
            let rd = d.withUnsafeBufferPointer { RowExtremes.of($0.baseAddress!, count: count) }
            let rf = f.withUnsafeBufferPointer { RowExtremes.of($0.baseAddress!, count: count) }
            XCTAssertEqual(rd.0, d.max()!)
            XCTAssertEqual(rd.1, d.min()!)
            XCTAssertTrue(rd.2)
            XCTAssertEqual(rf.0, Double(f.max()!))
            XCTAssertEqual(rf.1, Double(f.min()!))
            for bad in [Double.nan, .infinity, -.infinity] {
                for position in Set([0, count / 2, count - 1]) {
                    var e = d
                    e[position] = bad
                    XCTAssertFalse(e.withUnsafeBufferPointer { RowExtremes.of($0.baseAddress!, count: count) }.2)
                    let ef = e.map { Float($0) }
                    XCTAssertFalse(ef.withUnsafeBufferPointer { RowExtremes.of($0.baseAddress!, count: count) }.2)
                }
            }
        }
    }
}
