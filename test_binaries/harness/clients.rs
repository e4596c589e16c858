//! Clients that the criteria and pool_bench both compare the pool against, built in one place
//! so that the two measure the same thing.

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// hyper-util's legacy `Client` over rustls, sending bodies of type `B`.
pub type HyperUtilClient<B> = Client<hyper_rustls::HttpsConnector<HttpConnector>, B>;

/// hyper-util's legacy `Client` as a service would build it: its default pool, HTTPS only,
/// HTTP/1.1 and h2 both offered, trusting what `tls` trusts.
pub fn hyper_util_client<B>(mut tls: rustls::ClientConfig) -> HyperUtilClient<B>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    // hyper-rustls sets ALPN itself from enable_http1/enable_http2, and refuses a config
    // that already has some.
    tls.alpn_protocols.clear();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}
