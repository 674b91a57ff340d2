import COpenBLAS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Work counters shared by worker threads and the calling thread, behind a mutex.
public final class SharedProgress: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var done = 0
    private var stop = false
    private var finished: [Bool] = []
    private var failures: [Error?] = []
    private var nextTask = 0

    public init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    fileprivate func prepare(tasks: Int) {
        finished = Array(repeating: false, count: tasks)
        failures = Array(repeating: nil, count: tasks)
        nextTask = 0
    }

    /// The index of the next task not yet taken, or nil.
    fileprivate func takeTask(of count: Int) -> Int? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard nextTask < count else { return nil }
        nextTask += 1
        return nextTask - 1
    }

    fileprivate func finish(_ index: Int, _ failure: Error?) {
        pthread_mutex_lock(mutex)
        finished[index] = true
        failures[index] = failure
        if failure != nil { stop = true }
        pthread_mutex_unlock(mutex)
    }

    fileprivate var allFinished: Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return !finished.contains(false)
    }

    fileprivate var firstFailure: Error? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let all = failures.compactMap { $0 }
        return all.first(where: { ($0 as? EngineError) != .cancelled }) ?? all.first
    }

    public func add(_ units: Int) {
        pthread_mutex_lock(mutex)
        done += units
        pthread_mutex_unlock(mutex)
    }

    public var value: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return done
    }

    /// Set when the computation must stop (cancellation or an error elsewhere).
    public var cancelled: Bool {
        get {
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return stop
        }
        set {
            pthread_mutex_lock(mutex)
            stop = newValue
            pthread_mutex_unlock(mutex)
        }
    }
}

private final class TaskBox {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Runs `tasks` on up to `threads` worker threads (each takes the next task
/// until none is left) while the calling thread relays
/// `shared`'s counter to `progress` every 20 ms (the C callback must come on
/// the calling thread). If `progress` cancels, `shared.cancelled` is set so
/// the tasks stop at their next check; the first error of any task (or the
/// cancellation) is rethrown once every thread has been joined.
///
/// While the tasks run, OpenBLAS is limited to one thread (`BLASThreadLimit`),
/// so the machine is not oversubscribed; the previous setting is restored after.
public func runInParallel(
    _ tasks: [() throws -> Void], threads: Int, shared: SharedProgress, progress: Progress
) throws {
    // Small GEMMs from several threads: one OpenBLAS thread each (also for a
    // single task, whose GEMMs are too small to gain from threads).
    try BLASThreadLimit.singleThreaded {
        try runThreads(tasks, threads: threads, shared: shared, progress: progress)
    }
}

private func runThreads(_ tasks: [() throws -> Void], threads: Int, shared: SharedProgress, progress: Progress) throws {
    let workers = max(1, min(threads, tasks.count))
    if workers == 1 {
        for task in tasks { try task() }
        return
    }
    // Each worker takes the next task until none is left.
    shared.prepare(tasks: workers)
    var handles = [pthread_t]()
    for index in 0..<workers {
        let box = TaskBox {
            var failure: Error?
            while failure == nil, !shared.cancelled, let next = shared.takeTask(of: tasks.count) {
                do { try tasks[next]() } catch { failure = error }
            }
            shared.finish(index, failure)
        }
        var thread = pthread_t()
        let context = Unmanaged.passRetained(box).toOpaque()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                let box = Unmanaged<TaskBox>.fromOpaque(raw!).takeRetainedValue()
                box.body()
                return nil
            }, context)
        if rc != 0 {
            Unmanaged<TaskBox>.fromOpaque(context).release()
            box.body()  // run inline when no thread can be created
        } else {
            handles.append(thread)
        }
    }
    var cancelError: Error?
    while true {
        if shared.allFinished { break }
        if cancelError == nil {
            do { try progress.advance(to: shared.value) } catch {
                cancelError = error
                shared.cancelled = true
            }
        }
        usleep(20_000)
    }
    for t in handles { pthread_join(t, nil) }
    if let cancelError { throw cancelError }
    if let first = shared.firstFailure { throw first }
}
