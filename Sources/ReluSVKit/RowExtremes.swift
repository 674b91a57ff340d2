/// The maximum and minimum of a contiguous run of values, and whether all
/// of them are finite: the reduction applied to every row of `G X^T`.
///
/// The loops are written for the concrete types `Float` and `Double` with
/// SIMD accumulators, so that they vectorise; generic callers go through
/// `of(_:count:)`, which picks the concrete loop once per run (generic code
/// called from another module is not specialised, and an unspecialised
/// element-wise loop would cost more than the matrix product it follows).
enum RowExtremes {
    /// `(max, min, allFinite)` of `v[0 ..< count]`, `count >= 1`.
    @inline(__always)
    static func of<Scalar: BLASScalar>(_ v: UnsafePointer<Scalar>, count: Int) -> (Double, Double, Bool) {
        if Scalar.self == Float.self {
            return of(UnsafeRawPointer(v).assumingMemoryBound(to: Float.self), count: count)
        }
        if Scalar.self == Double.self {
            return of(UnsafeRawPointer(v).assumingMemoryBound(to: Double.self), count: count)
        }
        var hi = v[0]
        var lo = v[0]
        var finite = true
        for i in 0..<count {
            hi = Swift.max(hi, v[i])
            lo = Swift.min(lo, v[i])
            finite = finite && v[i].isFinite
        }
        return (Double(hi), Double(lo), finite)
    }

    /// Euclidean norm of `v[0 ..< count]`, accumulated in `Double`; when the
    /// sum of squares overflows, or is so small that squares may have
    /// underflowed (below `2^-480`: entries under `2^-511` square to
    /// subnormals), recomputed with the values scaled by a power of two, so a
    /// representable norm is returned (infinity only when the norm itself
    /// exceeds the range of `Double`; 0 only for a zero vector).
    static func norm<Scalar: BLASScalar>(_ v: UnsafePointer<Scalar>, count: Int) -> Double {
        let plain = sumOfSquares(v, count: count).squareRoot()
        guard plain.isInfinite || plain < 0x1p-480 else { return plain }
        var largest = 0.0
        for i in 0..<count { largest = Swift.max(largest, abs(Double(v[i]))) }
        guard largest.isFinite else { return .infinity }
        guard largest > 0 else { return 0 }
        let scale = Double(sign: .plus, exponent: largest.exponent, significand: 1)
        var s = 0.0
        for i in 0..<count {
            let x = Double(v[i]) / scale
            s += x * x
        }
        return s.squareRoot() * scale
    }

    private static func sumOfSquares<Scalar: BLASScalar>(_ v: UnsafePointer<Scalar>, count: Int) -> Double {
        var s = 0.0
        if Scalar.self == Float.self {
            let f = UnsafeRawPointer(v).assumingMemoryBound(to: Float.self)
            for i in 0..<count { s += Double(f[i]) * Double(f[i]) }
        } else if Scalar.self == Double.self {
            let d = UnsafeRawPointer(v).assumingMemoryBound(to: Double.self)
            for i in 0..<count { s += d[i] * d[i] }
        } else {
            for i in 0..<count { s += Double(v[i]) * Double(v[i]) }
        }
        return s
    }

    // The two loops below differ only in their types: a generic version is
    // not reliably specialised into vector code by the compiler.

    static func of(_ v: UnsafePointer<Float>, count: Int) -> (Double, Double, Bool) {
        typealias Lanes = SIMD8<Float>
        var hi = Lanes(repeating: v[0])
        var lo = hi
        var nonFinite = Lanes(repeating: 0)
        var i = 0
        while i + Lanes.scalarCount <= count {
            let e = UnsafeRawPointer(v + i).loadUnaligned(as: Lanes.self)
            hi = hi.replacing(with: e, where: e .> hi)
            lo = lo.replacing(with: e, where: e .< lo)
            nonFinite += e - e  // 0 for finite e, NaN for NaN and infinity
            i += Lanes.scalarCount
        }
        var h = hi.max()
        var l = lo.min()
        var z = nonFinite.sum()
        while i < count {
            h = Swift.max(h, v[i])
            l = Swift.min(l, v[i])
            z += v[i] - v[i]
            i += 1
        }
        return (Double(h), Double(l), z == 0)
    }

    static func of(_ v: UnsafePointer<Double>, count: Int) -> (Double, Double, Bool) {
        typealias Lanes = SIMD4<Double>
        var hi = Lanes(repeating: v[0])
        var lo = hi
        var nonFinite = Lanes(repeating: 0)
        var i = 0
        while i + Lanes.scalarCount <= count {
            let e = UnsafeRawPointer(v + i).loadUnaligned(as: Lanes.self)
            hi = hi.replacing(with: e, where: e .> hi)
            lo = lo.replacing(with: e, where: e .< lo)
            nonFinite += e - e  // 0 for finite e, NaN for NaN and infinity
            i += Lanes.scalarCount
        }
        var h = hi.max()
        var l = lo.min()
        var z = nonFinite.sum()
        while i < count {
            h = Swift.max(h, v[i])
            l = Swift.min(l, v[i])
            z += v[i] - v[i]
            i += 1
        }
        return (h, l, z == 0)
    }
}
