//! A child process's output, line by line: how the daemon logs a plugin's output and a plugin
//! logs its tunnel program's (openvpn's).

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Takes the child's piped stdout and stderr and calls `f` with each line of either, from a
/// task per stream, until the stream ends.
pub fn each_line<F>(child: &mut tokio::process::Child, f: F)
where
    F: Fn(String) + Clone + Send + 'static,
{
    let out = child
        .stdout
        .take()
        .map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>);
    let err = child
        .stderr
        .take()
        .map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>);
    for stream in [out, err].into_iter().flatten() {
        let f = f.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                f(l);
            }
        });
    }
}
