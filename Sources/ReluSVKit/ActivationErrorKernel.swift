/// The inner loop of the blocked passes (`NestedCurve`, MATH.md §3): one rank-one
/// update of a row of pre-activations fused with its squared activation error,
///
///     z <- z + c p,   returns ||act(z + b) - y||^2   (act(t) = t for t > 0, else slope t),
///
/// over `m` entries, in the precision of the data. Eight lanes of partial sums
/// (`SIMD8`), added pairwise at the end, then the tail one entry at a time: a
/// fixed order of sums for given `m`, one of the orders the rounding bound of
/// `ReluBoundProblem.roundingSlack` covers. Written out for `Double` and for
/// `Float`: vector code left generic over the scalar was not specialised (five
/// times slower than these, measured on the 1,024-wide benchmark layer).
enum ActivationErrorKernel {
    @inline(__always)
    static func updateAndError<Scalar: BLASScalar>(
        _ z: UnsafeMutablePointer<Scalar>, _ p: UnsafePointer<Scalar>, _ c: Scalar, _ b: UnsafePointer<Scalar>,
        _ y: UnsafePointer<Scalar>, m: Int, slope: Scalar
    ) -> Scalar {
        if Scalar.self == Double.self {
            let s = run(
                UnsafeMutableRawPointer(z), UnsafeRawPointer(p), unsafeBitCast(c, to: Double.self), UnsafeRawPointer(b),
                UnsafeRawPointer(y),
                m: m, slope: unsafeBitCast(slope, to: Double.self))
            return unsafeBitCast(s, to: Scalar.self)
        }
        let s = run(
            UnsafeMutableRawPointer(z), UnsafeRawPointer(p), unsafeBitCast(c, to: Float.self), UnsafeRawPointer(b),
            UnsafeRawPointer(y),
            m: m, slope: unsafeBitCast(slope, to: Float.self))
        return unsafeBitCast(s, to: Scalar.self)
    }

    @inline(__always)
    private static func run(
        _ z: UnsafeMutableRawPointer, _ p: UnsafeRawPointer, _ c: Double, _ b: UnsafeRawPointer, _ y: UnsafeRawPointer,
        m: Int, slope: Double
    ) -> Double {
        typealias Lanes = SIMD8<Double>
        let cs = Lanes(repeating: c)
        let slopes = Lanes(repeating: slope)
        var lanes = Lanes()
        var j = 0
        while j + 8 <= m {
            let offset = j * MemoryLayout<Double>.stride
            let v =
                z.loadUnaligned(fromByteOffset: offset, as: Lanes.self)
                + cs * p.loadUnaligned(fromByteOffset: offset, as: Lanes.self)
            z.storeBytes(of: v, toByteOffset: offset, as: Lanes.self)
            let t = v + b.loadUnaligned(fromByteOffset: offset, as: Lanes.self)
            let d =
                t.replacing(with: slopes * t, where: t .<= 0) - y.loadUnaligned(fromByteOffset: offset, as: Lanes.self)
            lanes += d * d
            j += 8
        }
        var s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
        let zs = z.assumingMemoryBound(to: Double.self)
        let ps = p.assumingMemoryBound(to: Double.self)
        let bs = b.assumingMemoryBound(to: Double.self)
        let ys = y.assumingMemoryBound(to: Double.self)
        while j < m {
            let v = zs[j] + c * ps[j]
            zs[j] = v
            let t = v + bs[j]
            let d = (t > 0 ? t : slope * t) - ys[j]
            s += d * d
            j += 1
        }
        return s
    }

    @inline(__always)
    private static func run(
        _ z: UnsafeMutableRawPointer, _ p: UnsafeRawPointer, _ c: Float, _ b: UnsafeRawPointer, _ y: UnsafeRawPointer,
        m: Int, slope: Float
    ) -> Float {
        typealias Lanes = SIMD8<Float>
        let cs = Lanes(repeating: c)
        let slopes = Lanes(repeating: slope)
        var lanes = Lanes()
        var j = 0
        while j + 8 <= m {
            let offset = j * MemoryLayout<Float>.stride
            let v =
                z.loadUnaligned(fromByteOffset: offset, as: Lanes.self)
                + cs * p.loadUnaligned(fromByteOffset: offset, as: Lanes.self)
            z.storeBytes(of: v, toByteOffset: offset, as: Lanes.self)
            let t = v + b.loadUnaligned(fromByteOffset: offset, as: Lanes.self)
            let d =
                t.replacing(with: slopes * t, where: t .<= 0) - y.loadUnaligned(fromByteOffset: offset, as: Lanes.self)
            lanes += d * d
            j += 8
        }
        var s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
        let zs = z.assumingMemoryBound(to: Float.self)
        let ps = p.assumingMemoryBound(to: Float.self)
        let bs = b.assumingMemoryBound(to: Float.self)
        let ys = y.assumingMemoryBound(to: Float.self)
        while j < m {
            let v = zs[j] + c * ps[j]
            zs[j] = v
            let t = v + bs[j]
            let d = (t > 0 ? t : slope * t) - ys[j]
            s += d * d
            j += 1
        }
        return s
    }
}
