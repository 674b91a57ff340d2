import CReluSV

#if canImport(Glibc)
import Glibc
#endif

/// An options struct of relusv.h that can grow: it begins with
/// `size_t struct_size` and fields are only appended (relusv.h, "ABI stability").
///
/// The caller's struct may be shorter than the library's (a program built
/// against an older header): the library reads its `struct_size` bytes and
/// takes its defaults for the fields beyond. A longer one (a newer header)
/// is refused, since the library cannot honour fields it does not know.
protocol SizedOptions {
    /// The struct's size in its first published version: `struct_size` is never smaller.
    static var firstVersionSize: Int { get }
    /// The library's defaults, `struct_size` set to the library's own size.
    static var defaults: Self { get }
}

extension SizedOptions {
    /// The library's size of the struct (C `sizeof`, tail padding included).
    static var librarySize: Int { MemoryLayout<Self>.stride }

    /// The `*_init` function: writes the defaults into the caller's first
    /// `size` bytes (zeros beyond the library's size) and sets `struct_size`.
    static func initialize(_ pointer: UnsafeMutableRawPointer?, size: Int) {
        guard let pointer, size >= MemoryLayout<Int>.size else { return }
        var values = defaults
        let known = min(size, librarySize)
        withUnsafeBytes(of: &values) { pointer.copyMemory(from: $0.baseAddress!, byteCount: known) }
        if size > known { memset(pointer + known, 0, size - known) }
        pointer.storeBytes(of: size, as: Int.self)
    }

    /// The options a call uses: the defaults for NULL, else the caller's
    /// `struct_size` bytes over the defaults, after checking that size.
    static func read(_ pointer: UnsafePointer<Self>?, _ name: String) throws -> Self {
        var values = defaults
        guard let pointer else { return values }
        let size = UnsafeRawPointer(pointer).load(as: Int.self)
        guard size >= firstVersionSize else {
            throw CallError(
                RELUSV_ERROR_INVALID_ARGUMENT,
                "\(name).struct_size = \(UInt(bitPattern: size)) is not "
                    + "the size of any version of \(Self.self) (at least \(firstVersionSize)); fill it with "
                    + "its init function")
        }
        guard size <= librarySize else {
            throw CallError(
                RELUSV_ERROR_INVALID_ARGUMENT,
                "\(name) has \(size) bytes but this library "
                    + "(relusv \(String(cString: relusv_version_string()))) knows \(librarySize): it was built "
                    + "against a newer relusv.h")
        }
        withUnsafeMutableBytes(of: &values) { $0.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: size)) }
        return values
    }
}
