import Glibc

/// The per-thread message behind `bp_last_error()`. C threads are not Swift tasks, so this is a
/// pthread key holding a malloc'd C string, freed when replaced or when the thread exits.
enum LastError {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        // If the key cannot be created the library has no error messages, but still works.
        _ = pthread_key_create(&key) { free($0) }
        return key
    }()

    static func set(_ message: String) {
        let copy = strdup(message)
        if let old = pthread_getspecific(key) { free(old) }
        pthread_setspecific(key, copy)
    }

    /// The message, or a pointer to an empty string when no call on this thread has failed.
    static var current: UnsafePointer<CChar> {
        if let message = pthread_getspecific(key) {
            return UnsafePointer(message.assumingMemoryBound(to: CChar.self))
        }
        return UnsafeRawPointer(("" as StaticString).utf8Start).assumingMemoryBound(to: CChar.self)
    }
}
