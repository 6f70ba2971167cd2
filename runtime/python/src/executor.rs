//! The tokio runtime a `Runtime` owns and shares with its apps.

use tokio::runtime::Handle;

/// The tokio runtime of a `Runtime` (two workers), shared with its apps. It is shut down
/// without waiting: the thread that drops it holds the GIL, which a worker delivering an
/// outcome may be waiting for.
pub struct Tokio(Option<tokio::runtime::Runtime>);

impl Tokio {
    /// Two worker threads named `membrane-python`.
    pub fn new() -> std::io::Result<Tokio> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("membrane-python")
            .enable_all()
            .build()?;
        Ok(Tokio(Some(rt)))
    }

    /// Where loads and async calls run.
    pub fn handle(&self) -> &Handle {
        match &self.0 {
            Some(rt) => rt.handle(),
            None => unreachable!("the tokio runtime lives until dropped"),
        }
    }
}

impl Drop for Tokio {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}
