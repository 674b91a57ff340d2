import CReluSV

/// The library version: the single place it is written (setup.py and the
/// Python package read it from here and from the library).
enum Version {
    static let string: StaticString = "0.1.0"

    /// `MAJOR * 10000 + MINOR * 100 + PATCH`, parsed from `string`.
    static let number: UInt32 = {
        let parts = "\(string)".split(separator: ".").map { UInt32($0) ?? 0 }
        return parts.reduce(0) { $0 * 100 + $1 }
    }()
}

@_cdecl("relusv_version_string")
public func relusv_version_string() -> UnsafePointer<CChar> {
    UnsafeRawPointer(Version.string.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("relusv_version_number")
public func relusv_version_number() -> UInt32 {
    Version.number
}
