//! A redirector on 127.0.0.1, a client that does not follow redirects, and table checks.

use std::net::SocketAddr;
use std::path::PathBuf;

use hoist_serve::{Redirector, ServeConfig};

/// The repository's `tests/fixtures`.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// A redirector serving on a free port until dropped.
pub struct Running {
    pub address: SocketAddr,
    pub redirector: Redirector,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub async fn start(config: ServeConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let redirector = Redirector::new(config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = redirector.clone();
        let task = tokio::spawn(async move {
            serving
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            address,
            redirector,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops accepting and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// One row of a rule table.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub status: u16,
    /// The exact `Location`, or `None` when there must be none.
    pub location: Option<String>,
}

impl Case {
    pub fn get(
        name: &'static str,
        path: impl Into<String>,
        status: u16,
        location: Option<String>,
    ) -> Self {
        Self {
            name,
            method: "GET",
            path: path.into(),
            headers: Vec::new(),
            status,
            location,
        }
    }

    pub fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Sends every case and fails once with every mismatch.
pub async fn check_table(server: &Running, cases: &[Case]) {
    let client = client();
    let mut failures = Vec::new();
    for case in cases {
        let url = format!("{}{}", server.origin(), case.path);
        let mut request = client.request(case.method.parse().unwrap(), &url);
        for (name, value) in &case.headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|value| value.to_str().unwrap().to_owned());
        if status != case.status || location != case.location {
            failures.push(format!(
                "{}: {} {}\n    expected {} {:?}\n    got      {} {:?}",
                case.name, case.method, case.path, case.status, case.location, status, location
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
