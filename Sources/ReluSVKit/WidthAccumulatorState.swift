/// A width accumulator of either precision, and its portable byte form.
///
/// Layout (little-endian), version 1:
///
///     offset  size  field
///     0       4     magic "RSVW"
///     4       4     format version (1)
///     8       4     precision: 32 or 64 (bits of the scalar the products use)
///     12      4     reserved (0)
///     16      8     dimension n
///     24      8     samples S
///     32      8     seed
///     40      8     number of points seen
///     48      8 S   running maxima (Double)
///     48+8S   8 S   running minima (Double)
///
/// The directions are not stored: they are a function of `(seed, S, n)`.
public enum AnyWidthAccumulator {
    case float(WidthAccumulator<Float>)
    case double(WidthAccumulator<Double>)

    static let magic: [UInt8] = Array("RSVW".utf8)
    static let version: UInt32 = 1
    static let headerSize = 48

    public var dimension: Int { switch self { case .float(let a): a.dimension; case .double(let a): a.dimension } }
    public var samples: Int { switch self { case .float(let a): a.samples; case .double(let a): a.samples } }
    public var seed: UInt64 { switch self { case .float(let a): a.seed; case .double(let a): a.seed } }
    public var count: Int { switch self { case .float(let a): a.count; case .double(let a): a.count } }
    public var maxima: [Double] { switch self { case .float(let a): a.maxima; case .double(let a): a.maxima } }
    public var minima: [Double] { switch self { case .float(let a): a.minima; case .double(let a): a.minima } }
    public var snapshot: (count: Int, maxima: [Double], minima: [Double]) {
        switch self { case .float(let a): a.snapshot; case .double(let a): a.snapshot }
    }
    public var precisionBits: Int { switch self { case .float: 32; case .double: 64 } }

    /// Number of bytes of `serialized()`.
    public var serializedSize: Int { Self.headerSize + 16 * samples }

    public func estimate(trim: Double, spherical: Bool) throws -> SampleSummary {
        switch self {
        case .float(let a): try a.estimate(trim: trim, spherical: spherical)
        case .double(let a): try a.estimate(trim: trim, spherical: spherical)
        }
    }

    public func sampleWidths(spherical: Bool) throws -> [Double] {
        switch self {
        case .float(let a): try a.sampleWidths(spherical: spherical)
        case .double(let a): try a.sampleWidths(spherical: spherical)
        }
    }

    /// Merges `other`, which must have the same precision, dimension, samples and seed.
    public func merge(_ other: AnyWidthAccumulator) throws {
        guard other.precisionBits == precisionBits else {
            throw EngineError.mismatch("cannot merge a float\(other.precisionBits) accumulator into a float\(precisionBits) one")
        }
        switch (self, other) {
        case let (.float(a), .float(b)): try a.merge(b)
        case let (.double(a), .double(b)): try a.merge(b)
        default: break  // precisions differ: rejected above
        }
    }

    public func merge(maxima: [Double], minima: [Double], count: Int, dimension: Int, seed: UInt64) throws {
        switch self {
        case .float(let a): try a.merge(maxima: maxima, minima: minima, count: count, dimension: dimension, seed: seed)
        case .double(let a): try a.merge(maxima: maxima, minima: minima, count: count, dimension: dimension, seed: seed)
        }
    }

    /// The state as bytes (see the type's documentation for the layout).
    public func serialized() -> [UInt8] {
        var out: [UInt8] = Self.magic
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        put(Self.version)
        put(UInt32(precisionBits))
        put(UInt32(0))
        put(UInt64(dimension))
        put(UInt64(samples))
        put(seed)
        let state = snapshot
        put(UInt64(state.count))
        for v in state.maxima { put(v.bitPattern) }
        for v in state.minima { put(v.bitPattern) }
        return out
    }

    /// Rebuilds an accumulator from `serialized()` bytes, checking every field.
    public init(serialized bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count >= Self.headerSize else {
            throw EngineError.corruptState("\(bytes.count) bytes is shorter than the \(Self.headerSize)-byte header")
        }
        func get<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        guard Array(bytes[0..<4]) == Self.magic else { throw EngineError.corruptState("bad magic number") }
        guard get(4, UInt32.self) == Self.version else {
            throw EngineError.corruptState("unsupported format version \(get(4, UInt32.self))")
        }
        let bits = get(8, UInt32.self)
        let dimension = get(16, UInt64.self), samples = get(24, UInt64.self)
        let seed = get(32, UInt64.self), count = get(40, UInt64.self)
        guard bits == 32 || bits == 64 else { throw EngineError.corruptState("precision \(bits) is neither 32 nor 64") }
        guard dimension > 0, samples > 0, dimension <= UInt64(WidthAccumulator<Double>.maximumDimension),
              samples <= UInt64(WidthAccumulator<Double>.maximumSamples), count <= UInt64(Int.max) else {
            throw EngineError.corruptState("dimension \(dimension), samples \(samples) or count \(count) out of range")
        }
        guard bytes.count == Self.headerSize + 16 * Int(samples) else {
            throw EngineError.corruptState("\(bytes.count) bytes do not match \(samples) samples (expected \(Self.headerSize + 16 * Int(samples)))")
        }
        let s = Int(samples)
        let maxima = (0..<s).map { Double(bitPattern: get(Self.headerSize + 8 * $0, UInt64.self)) }
        let minima = (0..<s).map { Double(bitPattern: get(Self.headerSize + 8 * (s + $0), UInt64.self)) }
        guard !maxima.contains(where: \.isNaN), !minima.contains(where: \.isNaN) else {
            throw EngineError.corruptState("extremes contain NaN")
        }
        self = bits == 32
            ? .float(try WidthAccumulator<Float>(dimension: Int(dimension), samples: s, seed: seed))
            : .double(try WidthAccumulator<Double>(dimension: Int(dimension), samples: s, seed: seed))
        do {
            try merge(maxima: maxima, minima: minima, count: Int(count), dimension: Int(dimension), seed: seed)
        } catch EngineError.invalidArgument(let why) {
            throw EngineError.corruptState(why)
        }
    }
}
