import CReluSV

/// The library version; the Python package reads it from here.
enum Version {
    static let major: UInt32 = 0, minor: UInt32 = 1, patch: UInt32 = 0
    static let string: StaticString = "0.1.0"
}

@_cdecl("relusv_version_string")
public func relusv_version_string() -> UnsafePointer<CChar> {
    UnsafeRawPointer(Version.string.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("relusv_version_number")
public func relusv_version_number() -> UInt32 {
    Version.major * 10000 + Version.minor * 100 + Version.patch
}
