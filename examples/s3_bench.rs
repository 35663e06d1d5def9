//! Benchmark helper for bench/copy.sh: `serve` runs s3s-fs (SigV4) as its own process, `copy`
//! copies a local backup set to it with planrun's copy code and prints the seconds taken.
//!
//!   s3_bench serve ROOT PORT ACCESS_KEY SECRET_KEY
//!   s3_bench copy SET_DIR PLAN SET_ID ENDPOINT BUCKET PREFIX ACCESS_KEY SECRET_KEY

use std::path::PathBuf;
use std::time::Instant;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

fn usage() -> ! {
    eprintln!(
        "usage: s3_bench serve ROOT PORT AK SK | copy SET_DIR PLAN SET_ID ENDPOINT BUCKET PREFIX AK SK"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") if args.len() == 5 => serve(&args[1], &args[2], &args[3], &args[4]).await,
        Some("copy") if args.len() == 9 => copy(&args[1..]).await,
        _ => usage(),
    }
}

async fn serve(root: &str, port: &str, access_key: &str, secret_key: &str) {
    let fs = s3s_fs::FileSystem::new(root).expect("the root folder exists");
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
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

async fn copy(args: &[String]) {
    let [
        set_dir,
        plan,
        set_id,
        endpoint,
        bucket,
        prefix,
        access_key,
        secret_key,
    ] = args
    else {
        usage()
    };
    let storage = planrun::plan::S3Storage {
        bucket: bucket.clone(),
        prefix: Some(prefix.clone()),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint.clone()),
        path_style: true,
        access_key_id: Some(access_key.clone()),
        secret_access_key: Some(secret_key.clone()),
        session_token: None,
        ca_file: None,
        allow_http: true,
        stall_timeout: None,
        retention: None,
    };
    let store = planrun::storage::Store::open("bench", &planrun::plan::Storage::S3(storage))
        .expect("storage opens");
    // SET_DIR is `<storage>/<plan>/<set-id>`: the local storage is two levels up.
    let set_dir = PathBuf::from(set_dir);
    let root = set_dir
        .parent()
        .and_then(|p| p.parent())
        .expect("SET_DIR is <storage>/<plan>/<set-id>");
    let local = planrun::storage::Store::new(planrun::storage::LocalStore::new(root));
    let id = planrun::storage::SetId::parse(set_id).expect("a set id");
    let started = Instant::now();
    let report = planrun::storage::copy_between(&local, &store, plan, &id)
        .await
        .expect("the copy succeeds");
    println!(
        "{:.2} {}",
        started.elapsed().as_secs_f64(),
        report.bytes_uploaded
    );
}
