import XCTest

@testable import ReluSVKit

/// The identity check of a shared weight SVD: the fingerprint reads the
/// entries (not the row stride) and tells a one-bit change.
final class WeightSVDTests: XCTestCase {
    func testFingerprintReadsEntriesNotLayout() throws {
        let storage: [Float] = [1, 2, 3, -9, 4, 5, 6, -9]  // 2 x 3 with row stride 4 (odd rows in float32)
        let dense: [Float] = [1, 2, 3, 4, 5, 6]
        let strided = storage.withUnsafeBufferPointer {
            WeightSVD<Float>.fingerprint(of: MatrixView(base: $0.baseAddress!, rows: 2, columns: 3, rowStride: 4))
        }
        let packed = dense.withUnsafeBufferPointer {
            WeightSVD<Float>.fingerprint(of: MatrixView(base: $0.baseAddress!, rows: 2, columns: 3))
        }
        XCTAssertEqual(strided, packed)
        for index in dense.indices {
            var changed = dense
            changed[index] = changed[index].nextUp  // the last bit of one entry
            let other = changed.withUnsafeBufferPointer {
                WeightSVD<Float>.fingerprint(of: MatrixView(base: $0.baseAddress!, rows: 2, columns: 3))
            }
            XCTAssertNotEqual(other, packed, "entry \(index)")
        }
    }

    func testSharedFactorsAreTheCurvesOwn() throws {
        let w = Matrix<Double>(rows: 3, columns: 4, storage: (0..<12).map { Double(($0 * 7) % 5) - 2 })
        let shared = try w.withView { try WeightSVD(of: $0) }
        let own = try w.withView { try thinSVD(of: $0) }
        XCTAssertEqual(shared.svd.s, own.s)
        XCTAssertEqual(shared.svd.u.storage, own.u.storage)
        XCTAssertEqual(shared.svd.vt.storage, own.vt.storage)
        XCTAssertTrue(w.withView { shared.belongs(to: $0) })
        let t = Matrix<Double>(rows: 4, columns: 3, storage: w.storage)  // the same bytes, another shape
        XCTAssertFalse(t.withView { shared.belongs(to: $0) })
    }
}
