//! Third-party code that may panic on bad input, run with the panic caught and its message kept
//! off the terminal: the user sees our error naming the file, not a library's raw panic text.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

static HOOK: std::sync::Once = std::sync::Once::new();

/// Runs `f`; a panic inside becomes `Err` with its message, printed by nobody. Other threads'
/// panics still print as before.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        assert_eq!(super::catch(|| 3), Ok(3));
        #[allow(clippy::panic)]
        let e = super::catch(|| -> u8 { panic!("bad length {}", 7) });
        assert_eq!(e, Err("bad length 7".to_string()));
    }
}
