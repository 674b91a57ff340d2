/// CRC-32 (IEEE 802.3, reflected polynomial `0xEDB88320`, initial and final
/// value `0xFFFFFFFF`): the checksum of zlib, PNG and gzip, so any of them
/// can verify it. It detects every error of up to 32 consecutive bits (so
/// every single-bit flip) and all but a fraction `2^-32` of other errors.
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { byte in
        var c = UInt32(byte)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            for b in bytes { crc = t[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }
}
