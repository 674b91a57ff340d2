#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Uninitialised engine-owned memory for `count` values of a trivial type,
/// freed with the buffer.
///
/// It comes from `malloc`, so a request the machine cannot satisfy (huge
/// `samples x dimension`, say) becomes an `EngineError` instead of stopping
/// the process, as a failed Swift array or `allocate` would.
final class ScratchBuffer<Element> {
    let pointer: UnsafeMutablePointer<Element>
    let count: Int

    /// `purpose` names the memory in the error message.
    init(count: Int, purpose: @autoclosure () -> String) throws {
        precondition(_isPOD(Element.self), "ScratchBuffer holds trivial values only")
        let (bytes, overflow) = Swift.max(count, 1).multipliedReportingOverflow(by: MemoryLayout<Element>.stride)
        guard count >= 0, !overflow, let raw = malloc(bytes) else {
            throw EngineError.invalidArgument(
                "cannot allocate \(overflow ? "more than \(Int.max)" : "\(bytes)") bytes for \(purpose()); reduce the problem size")
        }
        pointer = raw.bindMemory(to: Element.self, capacity: Swift.max(count, 1))
        self.count = count
    }

    deinit { free(pointer) }
}
