import CReluSV
import ReluSVKit

/// A Swift object handed to C as an opaque handle.
///
/// A handle is not an address: it is a serial number (never reused, with a
/// tag in its low bits that no object address has) registered in a
/// process-wide table together with the object. So
/// - `borrow` finds the object under the table's lock and holds a strong
///   reference for the whole call: a `*_free` from another thread during the
///   call only drops C's reference, and the object lives until the call ends;
/// - a handle of another kind (a spectrum passed as an accumulator), a freed
///   handle (use after free, double free) or a made-up value is reported as
///   `RELUSV_ERROR_INVALID_HANDLE` instead of being read as memory.
/// `handle()` registers the object (the `*_create` side); `release` removes it
/// (the `*_free` side, which accepts NULL and ignores unknown handles and
/// handles of another kind).
protocol OpaqueHandle: AnyObject {
    /// The C type name, for messages ("relusv_gmw_accumulator").
    static var kindName: String { get }
}

extension OpaqueHandle {
    func handle() -> OpaquePointer { HandleTable.shared.register(self) }

    static func borrow(_ handle: OpaquePointer?, _ name: String) throws -> Self {
        let raw = try required(handle, name)
        guard let object = HandleTable.shared.lookup(raw) else {
            throw CallError(
                RELUSV_ERROR_INVALID_HANDLE,
                "\(name) is not a live \(kindName) handle (freed, never created, or corrupted)")
        }
        guard let typed = object as? Self else {
            let actual = (object as? any OpaqueHandle).map { type(of: $0).kindName } ?? "unknown"
            throw CallError(RELUSV_ERROR_INVALID_HANDLE, "\(name) is a \(actual) handle, not a \(kindName)")
        }
        return typed
    }

    static func release(_ handle: OpaquePointer?) {
        guard let handle else { return }
        HandleTable.shared.remove(handle, if: { $0 is Self })
    }
}

/// The live handles of the process, behind one lock.
final class HandleTable {
    static let shared = HandleTable()

    private let lock = Lock()
    private var objects: [UInt: AnyObject] = [:]
    private var serial: UInt = 0
    /// Low bits of every handle: odd, so never the address of an object.
    private static let tag: UInt = 0xA5

    func register(_ object: AnyObject) -> OpaquePointer {
        lock.withLock {
            serial += 1
            let key = serial << 8 | Self.tag
            objects[key] = object
            return OpaquePointer(bitPattern: key)!
        }
    }

    func lookup(_ handle: OpaquePointer) -> AnyObject? {
        lock.withLock { objects[UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle)))] }
    }

    /// Drops the table's reference when the object is of the expected kind;
    /// the object dies once no running call holds it.
    func remove(_ handle: OpaquePointer, if matches: (AnyObject) -> Bool) {
        let key = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle)))
        let object: AnyObject? = lock.withLock {
            guard let object = objects[key], matches(object) else { return nil }
            return objects.removeValue(forKey: key)
        }
        _ = object  // released here, outside the lock
    }
}
