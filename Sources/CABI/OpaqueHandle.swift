/// A Swift object handed to C as an opaque pointer.
///
/// `handle()` gives C one retained reference (the `*_create` side), `borrow`
/// looks the object up for the duration of a call, and `release` drops C's
/// reference (the `*_free` side, which accepts NULL).
protocol OpaqueHandle: AnyObject {}

extension OpaqueHandle {
    func handle() -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(self).toOpaque()) }

    static func borrow(_ handle: OpaquePointer?, _ name: String) throws -> Self {
        let raw = try required(handle, name)
        return Unmanaged<Self>.fromOpaque(UnsafeRawPointer(raw)).takeUnretainedValue()
    }

    static func release(_ handle: OpaquePointer?) {
        guard let handle else { return }
        Unmanaged<Self>.fromOpaque(UnsafeRawPointer(handle)).release()
    }
}
