#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one check every input-sized allocation of the engine passes before it
/// happens, so that a request too large for the machine becomes
/// `EngineError.outOfMemory` instead of a fatal "failed to allocate".
///
/// The limit, in bytes, is the first of
/// 1. the value set by `setLimit(_:)` (the C call `relusv_set_memory_limit`),
/// 2. the environment variable `RELUSV_MEMORY_LIMIT` (bytes, or a number with
///    a suffix `K`, `M`, `G` or `T`, powers of 1024),
/// 3. the physical memory of the machine,
///
/// lowered to the address space still free under `RLIMIT_AS` when the process
/// has such a limit (a request above it could only fail). An entry point
/// checks its total estimate once before it allocates anything
/// (`require(elements:scalarBytes:for:)`), and every `ScratchBuffer` checks
/// its own size again; the check is per request, not a running total over
/// concurrent calls.
public enum MemoryBudget {
    private static let lock = Lock()
    private static var configured = 0

    /// Sets the limit in bytes; 0 restores the default (environment, then physical memory).
    public static func setLimit(_ bytes: Int) {
        lock.withLock { configured = max(bytes, 0) }
    }

    /// The limit in bytes that requests are checked against now.
    public static var limit: Int {
        let chosen = lock.withLock { configured }
        let base = chosen > 0 ? chosen : (environmentLimit ?? physicalMemory)
        return min(base, addressSpaceHeadroom ?? Int.max)
    }

    /// Refuses, before anything is allocated, a request of `bytes` above the limit.
    public static func require(bytes: Double, for what: @autoclosure () -> String) throws {
        let limit = self.limit
        guard bytes.isFinite, bytes <= Double(limit) else {
            throw EngineError.outOfMemory(
                "\(what()) needs \(describe(bytes)), more than the memory limit of \(describe(Double(limit))) "
                    + "(physical memory, or RELUSV_MEMORY_LIMIT); reduce the problem size")
        }
    }

    /// `require(bytes:)` for `elements` values of `scalarBytes` bytes each.
    public static func require(elements: Double, scalarBytes: Int, for what: @autoclosure () -> String) throws {
        try require(bytes: elements * Double(scalarBytes), for: what())
    }

    static var physicalMemory: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return Int.max }
        return pages.multipliedReportingOverflow(by: size).overflow ? Int.max : pages * size
    }

    /// `RELUSV_MEMORY_LIMIT`, parsed; nil when unset or unreadable.
    static var environmentLimit: Int? {
        guard let raw = getenv("RELUSV_MEMORY_LIMIT") else { return nil }
        return parse(String(cString: raw))
    }

    /// Bytes from "1073741824", "512M", "4G" (powers of 1024); nil if malformed or not positive.
    static func parse(_ text: String) -> Int? {
        var digits = Substring(text.trimmingSpaces)
        var scale = 1
        if let last = digits.last, let power = "KMGT".firstIndex(of: Character(last.uppercased())) {
            scale = 1 << (10 * ("KMGT".distance(from: "KMGT".startIndex, to: power) + 1))
            digits = digits.dropLast()
        }
        guard let value = Int(digits), value > 0 else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: scale)
        return overflow ? Int.max : bytes
    }

    /// `RLIMIT_AS` minus the address space in use, when the process has such a limit.
    static var addressSpaceHeadroom: Int? {
        var rl = rlimit()
        #if canImport(Glibc)
        guard getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &rl) == 0 else { return nil }
        #else
        guard getrlimit(RLIMIT_AS, &rl) == 0 else { return nil }
        #endif
        guard rl.rlim_cur < rlim_t(Int.max) else { return nil }  // RLIM_INFINITY is all ones
        return max(0, Int(rl.rlim_cur) - addressSpaceInUse)
    }

    /// Bytes of virtual address space mapped now (`/proc/self/statm`, first field).
    private static var addressSpaceInUse: Int {
        guard let file = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(file) }
        var pages = 0
        guard readFirstField(file, &pages) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    private static func readFirstField(_ file: UnsafeMutablePointer<FILE>, _ out: inout Int) -> Bool {
        var buffer = [CChar](repeating: 0, count: 32)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return false }
        let text = String(cString: buffer).split(separator: " ").first.map(String.init) ?? ""
        guard let value = Int(text) else { return false }
        out = value
        return true
    }

    private static func describe(_ bytes: Double) -> String {
        guard bytes.isFinite else { return "more than \(Int.max) bytes" }
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = bytes
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(value)) bytes" : "\((value * 10).rounded() / 10) \(units[unit])"
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
