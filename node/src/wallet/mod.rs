//! `vbank-node rsmc wallet`: serves the wallet page, a browser's view of the banks of the
//! accounts a node serves. The page's files are compiled into the binary, so it works with
//! no internet and nothing to install; the page talks to the node's JSON-RPC over WebSocket
//! itself (the `rsmc_` methods and the chain's head subscriptions), and this server only
//! hands out its files, the node's URL and invoices drawn as QR codes.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
	body::Incoming,
	header::{self, HeaderValue},
	server::conn::http1,
	service::service_fn,
	Method, Request, Response, StatusCode,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

/// The longest text drawn as a QR code: an invoice (`vbank:` URI, an address, an amount and
/// a hashlock) is under 200 bytes.
pub const MAX_QR_TEXT: usize = 512;

/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;
/// How long a connection may take to send a request's head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The page's files: path, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
	("/", "text/html; charset=utf-8", include_str!("assets/index.html")),
	("/wallet.css", "text/css; charset=utf-8", include_str!("assets/wallet.css")),
	("/wallet.js", "text/javascript; charset=utf-8", include_str!("assets/wallet.js")),
	("/rpc.js", "text/javascript; charset=utf-8", include_str!("assets/rpc.js")),
	("/units.js", "text/javascript; charset=utf-8", include_str!("assets/units.js")),
	("/dom.js", "text/javascript; charset=utf-8", include_str!("assets/dom.js")),
	("/bank.js", "text/javascript; charset=utf-8", include_str!("assets/bank.js")),
	("/favicon.svg", "image/svg+xml", include_str!("assets/favicon.svg")),
];

/// Serves the page on `listen` for the node at `node_url` until the process ends; prints
/// the address it serves on (the port the system chose, with `:0`).
pub async fn serve(listen: SocketAddr, node_url: String) -> Result<(), String> {
	let site = Arc::new(Site::new(node_url.clone())?);
	let listener = tokio::net::TcpListener::bind(listen)
		.await
		.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
	let bound = listener.local_addr().map_err(|e| e.to_string())?;
	println!("wallet: http://{bound}/ for the node at {node_url}");
	if !bound.ip().is_loopback() {
		eprintln!(
			"wallet: listening beyond this machine ({bound}); the page drives every account the \
			 node serves, for whoever can reach the node's RPC"
		);
	}
	let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
	loop {
		// A browser keeps a few connections; past the bound, the next waits for one to end.
		let Ok(permit) = connections.clone().acquire_owned().await else { return Ok(()) };
		let (stream, _) = match listener.accept().await {
			Ok(accepted) => accepted,
			// Out of file descriptors and the like: the next accept may do.
			Err(e) => {
				eprintln!("wallet: accept failed: {e}");
				tokio::time::sleep(std::time::Duration::from_millis(100)).await;
				continue;
			},
		};
		let site = site.clone();
		tokio::spawn(async move {
			let service = service_fn(move |request| {
				let site = site.clone();
				async move { Ok::<_, Infallible>(site.answer(&request)) }
			});
			// A browser that goes away mid-request is no news.
			let _ = http1::Builder::new()
				.timer(TokioTimer::new())
				.header_read_timeout(HEADER_TIMEOUT)
				.serve_connection(TokioIo::new(stream), service)
				.await;
			drop(permit);
		});
	}
}

/// What the server answers, given the node's URL.
pub struct Site {
	config: String,
	policy: HeaderValue,
}

impl Site {
	/// Refuses a URL that is not `ws://` or `wss://`, or that the page's security policy
	/// could not name (spaces, quotes, `;` or `,`).
	pub fn new(node_url: String) -> Result<Self, String> {
		let scheme = node_url.starts_with("ws://") || node_url.starts_with("wss://");
		let plain = node_url.bytes().all(|b| b.is_ascii_graphic() && !b"';,\"".contains(&b));
		if !scheme || !plain {
			return Err(format!("`{node_url}` is not a WebSocket URL (ws:// or wss://)"));
		}
		let config = serde_json::json!({ "url": node_url }).to_string();
		// The page may load only its own files and talk only to the node.
		let policy = format!(
			"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
			 connect-src 'self' {node_url}; base-uri 'none'; form-action 'none'; \
			 frame-ancestors 'none'"
		);
		let policy = HeaderValue::from_str(&policy).map_err(|e| format!("`{node_url}`: {e}"))?;
		Ok(Site { config, policy })
	}

	pub fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
		self.route(request.method(), request.uri().path(), request.uri().query())
	}

	fn route(&self, method: &Method, path: &str, query: Option<&str>) -> Response<Full<Bytes>> {
		let mut response = match path {
			_ if method != Method::GET && method != Method::HEAD => {
				plain(StatusCode::METHOD_NOT_ALLOWED, "the wallet serves GET only")
			},
			"/config.json" => {
				reply(StatusCode::OK, "application/json", Bytes::from(self.config.clone()))
			},
			"/qr.svg" => {
				let text = query.and_then(|query| {
					form_urlencoded::parse(query.as_bytes())
						.find(|(key, _)| key == "text")
						.map(|(_, text)| text.into_owned())
				});
				match text.as_deref().map(qr_svg) {
					Some(Ok(svg)) => reply(StatusCode::OK, "image/svg+xml", Bytes::from(svg)),
					Some(Err(e)) => plain(StatusCode::BAD_REQUEST, &e),
					None => plain(StatusCode::BAD_REQUEST, "give the text to draw: ?text=…"),
				}
			},
			path => match ASSETS.iter().find(|(asset, ..)| *asset == path) {
				Some((_, kind, body)) => {
					reply(StatusCode::OK, kind, Bytes::from_static(body.as_bytes()))
				},
				None => plain(StatusCode::NOT_FOUND, "no such page"),
			},
		};
		response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, self.policy.clone());
		if method == Method::HEAD {
			*response.body_mut() = Full::new(Bytes::new());
		}
		response
	}
}

/// `text` as a QR code, an SVG image; refused past [`MAX_QR_TEXT`] bytes.
pub fn qr_svg(text: &str) -> Result<String, String> {
	if text.is_empty() || text.len() > MAX_QR_TEXT {
		return Err(format!("the text to draw must be 1 to {MAX_QR_TEXT} bytes"));
	}
	let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M)
		.map_err(|e| format!("cannot draw this text as a QR code: {e}"))?;
	Ok(code
		.render::<qrcode::render::svg::Color>()
		.min_dimensions(200, 200)
		.quiet_zone(true)
		.build())
}

fn reply(status: StatusCode, kind: &str, body: Bytes) -> Response<Full<Bytes>> {
	let mut response = Response::new(Full::new(body));
	*response.status_mut() = status;
	let headers = response.headers_mut();
	if let Ok(kind) = HeaderValue::from_str(kind) {
		headers.insert(header::CONTENT_TYPE, kind);
	}
	headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
	headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
	response
}

fn plain(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
	reply(status, "text/plain; charset=utf-8", Bytes::from(message.to_string()))
}

#[cfg(test)]
mod tests {
	use super::*;
	use http_body_util::BodyExt;

	fn get(site: &Site, path: &str, query: Option<&str>) -> (StatusCode, String, String) {
		let response = site.route(&Method::GET, path, query);
		let kind = response.headers()[header::CONTENT_TYPE].to_str().unwrap().to_string();
		let status = response.status();
		let body = futures::executor::block_on(response.into_body().collect()).unwrap();
		(status, kind, String::from_utf8(body.to_bytes().to_vec()).unwrap())
	}

	#[test]
	fn the_page_its_files_and_the_nodes_url_are_served() {
		let site = Site::new("ws://127.0.0.1:9944".into()).unwrap();
		let (status, kind, body) = get(&site, "/", None);
		assert_eq!((status, kind.as_str()), (StatusCode::OK, "text/html; charset=utf-8"));
		assert!(body.contains("<script type=\"module\" src=\"/wallet.js\">"), "{body}");
		for (path, ..) in ASSETS {
			assert_eq!(get(&site, path, None).0, StatusCode::OK, "{path}");
		}
		let (status, _, config) = get(&site, "/config.json", None);
		assert_eq!(status, StatusCode::OK);
		assert_eq!(config, r#"{"url":"ws://127.0.0.1:9944"}"#);
		assert_eq!(get(&site, "/../Cargo.toml", None).0, StatusCode::NOT_FOUND);
		let post = site.route(&Method::POST, "/", None);
		assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
		let policy = post.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
		assert!(policy.contains("connect-src 'self' ws://127.0.0.1:9944;"), "{policy}");
	}

	#[test]
	fn a_node_url_the_page_cannot_reach_is_refused_at_the_start() {
		for bad in ["http://127.0.0.1:9944", "ws://a b", "ws://x'; script-src *", "ws://x,y", ""] {
			let error = Site::new(bad.into()).err().unwrap_or_else(|| panic!("{bad} taken"));
			assert!(error.contains("is not a WebSocket URL"), "{error}");
		}
		assert!(Site::new("wss://node.example:443/rpc".into()).is_ok());
	}

	#[test]
	fn an_invoice_is_drawn_as_a_qr_code_and_oversized_text_is_refused() {
		let site = Site::new("ws://127.0.0.1:9944".into()).unwrap();
		let (status, kind, svg) = get(&site, "/qr.svg", Some("text=vbank%3A5Grw%3Famount%3D5"));
		assert_eq!((status, kind.as_str()), (StatusCode::OK, "image/svg+xml"));
		assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg}");
		// The same text, the same code; another text, another.
		assert_eq!(svg, qr_svg("vbank:5Grw?amount=5").unwrap());
		assert_ne!(svg, qr_svg("vbank:5Grw?amount=6").unwrap());
		let long = format!("text={}", "a".repeat(MAX_QR_TEXT + 1));
		let (status, _, message) = get(&site, "/qr.svg", Some(&long));
		assert_eq!(status, StatusCode::BAD_REQUEST);
		assert!(message.contains("1 to 512 bytes"), "{message}");
		assert_eq!(get(&site, "/qr.svg", None).0, StatusCode::BAD_REQUEST);
	}
}
