#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Uninitialised engine-owned memory for `count` values of a trivial type,
/// freed with the buffer: the engine's checked allocation.
///
/// The size is checked against `MemoryBudget` before anything is allocated,
/// and the memory comes from `malloc`, so a request the machine cannot
/// satisfy (huge `samples x dimension`, say) becomes
/// `EngineError.outOfMemory` instead of stopping the process, as a failed
/// Swift array or `allocate` would.
final class ScratchBuffer<Element> {
    let pointer: UnsafeMutablePointer<Element>
    let count: Int

    /// `purpose` names the memory in the error message.
    init(count: Int, purpose: @autoclosure () -> String) throws {
        precondition(_isPOD(Element.self), "ScratchBuffer holds trivial values only")
        precondition(count >= 0, "negative element count")
        let bytes = Double(Swift.max(count, 1)) * Double(MemoryLayout<Element>.stride)
        try MemoryBudget.require(bytes: bytes, for: purpose())
        guard let raw = malloc(Int(bytes)) else {
            throw EngineError.outOfMemory(
                "cannot allocate \(Int(bytes)) bytes for \(purpose()); reduce the problem size")
        }
        pointer = raw.bindMemory(to: Element.self, capacity: Swift.max(count, 1))
        self.count = count
    }

    deinit { free(pointer) }
}
