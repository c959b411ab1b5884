//! A child process's output, line by line: how the daemon logs a plugin's output and a plugin
//! logs its tunnel program's (openvpn's).

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Takes the child's piped stdout and stderr and calls `f` with each line of either, from a
/// task per stream, until the stream ends; the tasks, which end with their streams.
pub fn each_line<F>(child: &mut tokio::process::Child, f: F) -> Vec<tokio::task::JoinHandle<()>>
where
    F: Fn(String) + Clone + Send + 'static,
{
    let mut tasks = Vec::new();
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
        tasks.push(tokio::spawn(async move {
            // Every line, whatever its bytes (a line that is not UTF-8 is shown lossily and
            // does not end the stream), until the stream ends.
            let mut r = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let l = buf.strip_suffix(b"\n").unwrap_or(&buf);
                        let l = l.strip_suffix(b"\r").unwrap_or(l);
                        f(String::from_utf8_lossy(l).into_owned());
                    }
                }
            }
        }));
    }
    tasks
}
