//! The loopback S3 server for bench/copy.sh: s3s-fs with SigV4 in its own process, so the
//! benchmark times the `planrun` binary's copy against a real server. It uses no planrun code.
//!
//!   s3_server ROOT PORT ACCESS_KEY SECRET_KEY

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, port, access_key, secret_key] = args.as_slice() else {
        eprintln!("usage: s3_server ROOT PORT ACCESS_KEY SECRET_KEY");
        std::process::exit(2)
    };
    let fs = s3s_fs::FileSystem::new(root).expect("the root folder exists");
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(access_key, secret_key.as_str()));
    let service = builder.build();
    let listener =
        tokio::net::TcpListener::bind(("127.0.0.1", port.parse::<u16>().expect("a port")))
            .await
            .expect("the port is free");
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let connection = http
            .serve_connection(TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}
