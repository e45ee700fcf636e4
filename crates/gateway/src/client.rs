//! A plain HTTP/1.1 GET, for Tafel's own commands that ask a running server (`tafel
//! backup` reads a node's log through the API; the cluster's start reads each NATS
//! server's `/varz`).

use http_body_util::{BodyExt, Empty};

/// GETs `path` from `address` (`host:port` or `http://host:port`), with a bearer token
/// when given; answers the status and the whole body.
pub async fn get(address: &str, path: &str, bearer: Option<&str>) -> Result<(u16, bytes::Bytes), String> {
    tokio::time::timeout(TIMEOUT, get_now(address, path, bearer))
        .await
        .map_err(|_| format!("{address}{path}: no answer within {} s", TIMEOUT.as_secs()))?
}

/// Longest wait for one answer.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

async fn get_now(address: &str, path: &str, bearer: Option<&str>) -> Result<(u16, bytes::Bytes), String> {
    let address = address.trim_start_matches("http://").trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(address).await.map_err(|e| format!("{address}: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut request = hyper::Request::get(path).header(hyper::header::HOST, address);
    if let Some(token) = bearer {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request.body(Empty::<bytes::Bytes>::new()).map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, body))
}
