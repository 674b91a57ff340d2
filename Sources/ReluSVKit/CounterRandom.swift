#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A counter-based generator of standard normal numbers (Philox4x32-10,
/// Salmon et al., SC 2011).
///
/// The value at `(row, column)` is a pure function of `(seed, stream, row,
/// column)`: it does not depend on thread count, batch size or the order of
/// calls, so two processes with one seed draw the same numbers. Streams keep
/// independent uses of one seed apart (GMW directions, sphere samples, ...).
public struct CounterRandom: Sendable {
    /// Independent uses of one seed.
    public enum Stream: UInt32, Sendable {
        case widthDirections = 1
        case sphereSample = 2
        case factorInitialisation = 3
        case minibatch = 4
    }

    public let seed: UInt64
    public let stream: Stream

    public init(seed: UInt64, stream: Stream) {
        self.seed = seed
        self.stream = stream
    }

    /// The standard normal number at position `(row, column)`.
    @inlinable public func normal(row: Int, column: Int) -> Double {
        let pair = normalPair(row: row, pairIndex: column >> 1)
        return column & 1 == 0 ? pair.0 : pair.1
    }

    /// Two independent standard normals (Box–Muller on two 53-bit uniforms)
    /// at columns `2 * pairIndex` and `2 * pairIndex + 1` of `row`.
    @inlinable public func normalPair(row: Int, pairIndex: Int) -> (Double, Double) {
        let r = Philox4x32.block(
            counter: (
                UInt32(truncatingIfNeeded: pairIndex), UInt32(truncatingIfNeeded: row),
                UInt32(truncatingIfNeeded: row >> 32) ^ UInt32(truncatingIfNeeded: pairIndex >> 32) << 16,
                stream.rawValue
            ),
            key: (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)))
        // (0, 1] and [0, 1) uniforms with 53 random bits each.
        let scale = 1.0 / 9007199254740992.0  // 2^-53
        let a = (UInt64(r.0) << 21) ^ UInt64(r.1 >> 11)
        let b = (UInt64(r.2) << 21) ^ UInt64(r.3 >> 11)
        let u1 = (Double(a & ((1 << 53) - 1)) + 1) * scale
        let u2 = Double(b & ((1 << 53) - 1)) * scale
        let radius = (-2 * log(u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        return (radius * cos(angle), radius * sin(angle))
    }

    /// Fills `out[0 ..< rows * columns]` (row-major) with the normals of rows
    /// `firstRow ..< firstRow + rows`, converted to `Scalar`.
    public func fillNormals<Scalar: BLASScalar>(
        _ out: UnsafeMutablePointer<Scalar>, firstRow: Int, rows: Int, columns: Int
    ) {
        // Concrete loops: an unspecialised generic conversion per element
        // would cost more than the generator itself.
        if Scalar.self == Double.self {
            fill(
                UnsafeMutableRawPointer(out).assumingMemoryBound(to: Double.self),
                firstRow: firstRow, rows: rows, columns: columns, as: { $0 })
        } else if Scalar.self == Float.self {
            fill(
                UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self),
                firstRow: firstRow, rows: rows, columns: columns, as: { Float($0) })
        } else {
            fill(out, firstRow: firstRow, rows: rows, columns: columns, as: { Scalar($0) })
        }
    }

    @inline(__always)
    private func fill<T>(
        _ out: UnsafeMutablePointer<T>, firstRow: Int, rows: Int, columns: Int, as convert: (Double) -> T
    ) {
        for i in 0..<rows {
            let dst = out + i * columns
            var j = 0
            while j + 1 < columns {
                let (x, y) = normalPair(row: firstRow + i, pairIndex: j >> 1)
                dst[j] = convert(x)
                dst[j + 1] = convert(y)
                j += 2
            }
            if j < columns { dst[j] = convert(normalPair(row: firstRow + i, pairIndex: j >> 1).0) }
        }
    }
}

/// The Philox4x32 block function with 10 rounds.
@usableFromInline enum Philox4x32 {
    @inlinable static func block(
        counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32)
    ) -> (UInt32, UInt32, UInt32, UInt32) {
        var c = counter
        var k = key
        for round in 0..<10 {
            if round > 0 {
                k.0 &+= 0x9E37_79B9
                k.1 &+= 0xBB67_AE85
            }
            let p0 = UInt64(0xD251_1F53) * UInt64(c.0)
            let p1 = UInt64(0xCD9E_8D57) * UInt64(c.2)
            c = (
                UInt32(truncatingIfNeeded: p1 >> 32) ^ c.1 ^ k.0, UInt32(truncatingIfNeeded: p1),
                UInt32(truncatingIfNeeded: p0 >> 32) ^ c.3 ^ k.1, UInt32(truncatingIfNeeded: p0)
            )
        }
        return c
    }
}
