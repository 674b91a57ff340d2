/// A width accumulator of either precision, and its portable byte form.
///
/// Layout (little-endian), version 2:
///
///     offset   size  field
///     0        4     magic "RSVW"
///     4        4     format version (2)
///     8        4     precision: 32 or 64 (bits of the scalar the products use)
///     12       4     reserved, must be 0
///     16       8     dimension n
///     24       8     samples S
///     32       8     seed
///     40       8     number of points seen
///     48       8 S   running maxima (Double)
///     48+8S    8 S   running minima (Double)
///     48+16S   4     CRC-32 (zlib's) of bytes 0 ..< 48+16S
///
/// The directions are not stored: they are a function of `(seed, S, n)`.
/// Reading checks, in order and before allocating anything: the size against
/// the header, the checksum, the magic, version, precision and reserved
/// field, `n`, `S` and `n x S` against `WidthAccumulator`'s limits and the
/// memory budget, then the extremes (no NaN; finite with `max >= min`, or the
/// empty state). Version 1 (the same without the checksum, 48 + 16 S bytes)
/// is still read with the same checks except the checksum: a corrupted
/// version-1 state can go unnoticed, so re-export old states.
///
/// A state describes data, not code: reading one never runs anything, but the
/// Python `pickle` wrapper around it is as unsafe as any pickle for
/// untrusted input.
public enum AnyWidthAccumulator {
    case float(WidthAccumulator<Float>)
    case double(WidthAccumulator<Double>)

    static let magic: [UInt8] = Array("RSVW".utf8)
    static let version: UInt32 = 2
    static let headerSize = 48
    static let checksumSize = 4

    public var dimension: Int {
        switch self {
        case .float(let a): a.dimension
        case .double(let a): a.dimension
        }
    }
    public var samples: Int {
        switch self {
        case .float(let a): a.samples
        case .double(let a): a.samples
        }
    }
    public var seed: UInt64 {
        switch self {
        case .float(let a): a.seed
        case .double(let a): a.seed
        }
    }
    public var count: Int {
        switch self {
        case .float(let a): a.count
        case .double(let a): a.count
        }
    }
    public var maxima: [Double] {
        switch self {
        case .float(let a): a.maxima
        case .double(let a): a.maxima
        }
    }
    public var minima: [Double] {
        switch self {
        case .float(let a): a.minima
        case .double(let a): a.minima
        }
    }
    public var snapshot: (count: Int, maxima: [Double], minima: [Double]) {
        switch self {
        case .float(let a): a.snapshot
        case .double(let a): a.snapshot
        }
    }
    public var precisionBits: Int {
        switch self {
        case .float: 32
        case .double: 64
        }
    }

    /// Number of bytes of `serialized()`.
    public var serializedSize: Int { Self.headerSize + 16 * samples + Self.checksumSize }

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
            throw EngineError.mismatch(
                "cannot merge a float\(other.precisionBits) accumulator into a float\(precisionBits) one")
        }
        switch (self, other) {
        case (.float(let a), .float(let b)): try a.merge(b)
        case (.double(let a), .double(let b)): try a.merge(b)
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
        put(out.withUnsafeBytes { CRC32.checksum($0) })
        return out
    }

    /// Rebuilds an accumulator from `serialized()` bytes (version 2, or
    /// version 1), checking every field before allocating anything.
    public init(serialized bytes: UnsafeRawBufferPointer) throws {
        let header = try Header(bytes)
        let s = header.samples
        func double(_ offset: Int) -> Double {
            Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
        }
        let maxima = (0..<s).map { double(Self.headerSize + 8 * $0) }
        let minima = (0..<s).map { double(Self.headerSize + 8 * (s + $0)) }
        guard !maxima.contains(where: \.isNaN), !minima.contains(where: \.isNaN) else {
            throw EngineError.corruptState("extremes contain NaN")
        }
        do {
            self =
                header.bits == 32
                ? .float(try WidthAccumulator<Float>(dimension: header.dimension, samples: s, seed: header.seed))
                : .double(try WidthAccumulator<Double>(dimension: header.dimension, samples: s, seed: header.seed))
            try merge(
                maxima: maxima, minima: minima, count: header.count, dimension: header.dimension,
                seed: header.seed)
        } catch EngineError.invalidArgument(let why) {
            throw EngineError.corruptState(why)
        }
    }

    /// The checked header of a serialised state.
    private struct Header {
        let bits: UInt32
        let dimension: Int, samples: Int, count: Int
        let seed: UInt64

        init(_ bytes: UnsafeRawBufferPointer) throws {
            let headerSize = AnyWidthAccumulator.headerSize
            guard bytes.count >= headerSize else {
                throw EngineError.corruptState("\(bytes.count) bytes is shorter than the \(headerSize)-byte header")
            }
            func get<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
                T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
            }
            guard Array(bytes[0..<4]) == AnyWidthAccumulator.magic else {
                throw EngineError.corruptState("bad magic number")
            }
            let version = get(4, UInt32.self)
            guard version == 1 || version == AnyWidthAccumulator.version else {
                throw EngineError.corruptState("unsupported format version \(version)")
            }
            let rawSamples = get(24, UInt64.self)
            // The size first (it needs only S): a checksum is then read from where it must be.
            let trailer = version == 1 ? 0 : AnyWidthAccumulator.checksumSize
            let (payload, o1) = rawSamples.multipliedReportingOverflow(by: 16)
            let (expected, o2) = payload.addingReportingOverflow(UInt64(headerSize + trailer))
            guard !o1, !o2, UInt64(bytes.count) == expected else {
                throw EngineError.corruptState(
                    "\(bytes.count) bytes do not match a version-\(version) state of \(rawSamples) samples")
            }
            if version >= 2 {
                let body = UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count - trailer)])
                guard get(bytes.count - trailer, UInt32.self) == CRC32.checksum(body) else {
                    throw EngineError.corruptState("checksum mismatch: the state was altered or truncated")
                }
            }
            bits = get(8, UInt32.self)
            guard bits == 32 || bits == 64 else {
                throw EngineError.corruptState("precision \(bits) is neither 32 nor 64")
            }
            guard get(12, UInt32.self) == 0 else { throw EngineError.corruptState("reserved field is not zero") }
            let rawDimension = get(16, UInt64.self)
            let rawCount = get(40, UInt64.self)
            guard rawDimension > 0, rawDimension <= UInt64(WidthAccumulator<Double>.maximumDimension),
                rawSamples > 0, rawSamples <= UInt64(WidthAccumulator<Double>.maximumSamples),
                rawCount <= UInt64(Int.max)
            else {
                throw EngineError.corruptState(
                    "dimension \(rawDimension), samples \(rawSamples) or count \(rawCount) out of range")
            }
            guard rawDimension * rawSamples <= UInt64(WidthAccumulator<Double>.maximumElements) else {
                throw EngineError.corruptState(
                    "samples x dimension = \(rawSamples) x \(rawDimension) exceeds the limit "
                        + "of \(WidthAccumulator<Double>.maximumElements) that every accumulator respects")
            }
            dimension = Int(rawDimension)
            samples = Int(rawSamples)
            count = Int(rawCount)
            seed = get(32, UInt64.self)
            // n x S and the memory budget, before the directions are allocated.
            do {
                if bits == 32 {
                    try WidthAccumulator<Float>.validate(dimension: dimension, samples: samples)
                } else {
                    try WidthAccumulator<Double>.validate(dimension: dimension, samples: samples)
                }
            } catch EngineError.invalidArgument(let why) {
                throw EngineError.corruptState(why)
            }
        }
    }
}
