//! The S3 object layer against a real SigV4 server on loopback (s3s-fs), and awscli as the peer.

use std::sync::{Arc, Mutex};

use super::test_client::tuning;
use super::test_server::{S3Server, StopsServer, noise, sha256_hex};
use super::{ObjectInfo, S3Bucket, S3Error, S3Settings};

#[tokio::test]
async fn small_and_multipart_objects_round_trip_with_their_sha256() {
    let server = S3Server::start();
    let bucket = server.bucket("crm/");
    let dir = tempfile::tempdir().unwrap();
    for (name, len) in [("small.bin", 1000), ("large.bin", 12 * 1024 * 1024 + 17)] {
        let data = noise(len, len as u64);
        let local = dir.path().join(name);
        std::fs::write(&local, &data).unwrap();
        let sha = sha256_hex(&data);
        let uploaded = bucket
            .upload_file(&local, &format!("set/{name}"), &sha)
            .await
            .unwrap();
        assert_eq!(
            (uploaded.size, uploaded.multipart),
            (len as u64, len > 5 * 1024 * 1024)
        );
        let head = bucket.head(&format!("set/{name}")).await.unwrap();
        assert_eq!(head.sha256.as_deref(), Some(sha.as_str()));
        // The bytes on the server's disk are the bytes sent.
        assert_eq!(
            std::fs::read(server.bucket_dir().join("crm/set").join(name)).unwrap(),
            data
        );
        let digest = bucket.digest(&format!("set/{name}")).await.unwrap();
        assert_eq!(
            (digest.size, digest.sha256.as_str()),
            (len as u64, sha.as_str())
        );
        let back = dir.path().join(format!("{name}.back"));
        bucket
            .download(&format!("set/{name}"), &back)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&back).unwrap(), data);
    }
    let listed: Vec<(String, u64)> = bucket
        .list("set")
        .await
        .unwrap()
        .into_iter()
        .map(|ObjectInfo { key, size, .. }| (key, size))
        .collect();
    assert_eq!(
        listed,
        [
            ("set/large.bin".to_owned(), 12 * 1024 * 1024 + 17),
            ("set/small.bin".to_owned(), 1000),
        ]
    );
    let (folders, objects) = bucket.list_folder("").await.unwrap();
    assert_eq!((folders, objects), (vec!["set".to_owned()], vec![]));
    bucket.delete("set/small.bin").await.unwrap();
    bucket.delete("set/small.bin").await.unwrap();
    assert!(matches!(
        bucket.head("set/small.bin").await,
        Err(S3Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_server() {
    let server = S3Server::start();
    let mut storage = server.storage("crm/");
    storage.secret_access_key = Some("wrong".into());
    let settings = S3Settings::resolve(&storage, |_| None).unwrap();
    let bucket = S3Bucket::connect(&settings, tuning()).unwrap();
    let error = bucket.put_bytes("x", b"hello".to_vec()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "s3://offsite/crm/x: uploading: the service refused the request signature \
         (HTTP 403 SignatureDoesNotMatch): check `secret_access_key`"
    );
}

#[tokio::test]
async fn bytes_that_do_not_match_the_expected_sha256_are_never_stored() {
    let server = S3Server::start();
    let bucket = server.bucket("crm/");
    for len in [100, 11 * 1024 * 1024] {
        let data = noise(len, 7);
        let wrong = sha256_hex(b"something else");
        let error = bucket
            .upload(data.as_slice(), "set/a.bin", &wrong, "a.bin")
            .await
            .unwrap_err();
        assert!(matches!(error, S3Error::SourceMismatch { .. }), "{error}");
        assert_eq!(bucket.list("").await.unwrap(), []);
    }
}

#[tokio::test]
async fn an_upload_cut_off_by_a_dead_server_leaves_nothing_and_the_rerun_completes() {
    let server = Arc::new(Mutex::new(S3Server::start()));
    let bucket = server.lock().unwrap().bucket("crm/");
    let data = noise(30 * 1024 * 1024, 3);
    let sha = sha256_hex(&data);
    let reader = StopsServer::new(data.clone(), 12 * 1024 * 1024, server.clone());
    let error = bucket
        .upload(reader, "set/db.dump", &sha, "db.dump")
        .await
        .unwrap_err();
    // The part upload is what failed; the abort that followed comes second.
    let message = error.to_string();
    assert!(matches!(error, S3Error::Request { .. }), "{error}");
    assert!(
        message.starts_with("s3://offsite/crm/set/db.dump: uploading part "),
        "{message}"
    );
    assert!(message.contains("Connection refused"), "{message}");
    assert!(
        message.contains("; aborting the multipart upload failed too: "),
        "{message}"
    );
    server.lock().unwrap().restart();
    assert!(matches!(
        bucket.head("set/db.dump").await,
        Err(S3Error::NotFound { .. })
    ));
    let uploaded = bucket
        .upload(data.as_slice(), "set/db.dump", &sha, "db.dump")
        .await
        .unwrap();
    assert_eq!(uploaded.sha256, sha);
    assert_eq!(bucket.digest("set/db.dump").await.unwrap().sha256, sha);
}

#[tokio::test]
async fn awscli_reads_what_planrun_uploads_and_the_reverse() {
    let server = S3Server::start();
    let bucket = server.bucket("crm/");
    let dir = tempfile::tempdir().unwrap();
    let data = noise(9 * 1024 * 1024, 11);
    let sha = sha256_hex(&data);
    let ours = dir.path().join("ours.bin");
    std::fs::write(&ours, &data).unwrap();
    bucket
        .upload_file(&ours, "set/ours.bin", &sha)
        .await
        .unwrap();

    let fetched = dir.path().join("fetched.bin");
    let status = server
        .aws()
        .args([
            "s3",
            "cp",
            "--only-show-errors",
            "s3://offsite/crm/set/ours.bin",
        ])
        .arg(&fetched)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&fetched).unwrap(), data);
    let head = server
        .aws()
        .args([
            "s3api",
            "head-object",
            "--bucket",
            "offsite",
            "--key",
            "crm/set/ours.bin",
        ])
        .output()
        .unwrap();
    let head: serde_json::Value = serde_json::from_slice(&head.stdout).unwrap();
    assert_eq!(head["Metadata"]["sha256"], serde_json::json!(sha));

    // awscli uploads multipart above 8 MiB; planrun reads it back byte for byte.
    let theirs = dir.path().join("theirs.bin");
    let their_data = noise(20 * 1024 * 1024, 12);
    std::fs::write(&theirs, &their_data).unwrap();
    let status = server
        .aws()
        .args(["s3", "cp", "--only-show-errors"])
        .arg(&theirs)
        .arg("s3://offsite/crm/set/theirs.bin")
        .status()
        .unwrap();
    assert!(status.success());
    let digest = bucket.digest("set/theirs.bin").await.unwrap();
    assert_eq!(digest.sha256, sha256_hex(&their_data));
    assert_eq!(bucket.head("set/theirs.bin").await.unwrap().sha256, None);
}

#[tokio::test]
async fn an_abandoned_multipart_upload_is_aborted() {
    let server = S3Server::start();
    let bucket = server.bucket("crm/");
    // A killed client leaves an upload with a part in it.
    let created = server
        .aws()
        .args([
            "s3api",
            "create-multipart-upload",
            "--bucket",
            "offsite",
            "--key",
            "crm/set/db.dump",
        ])
        .output()
        .unwrap();
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let upload_id = created["UploadId"].as_str().unwrap().to_owned();
    let part = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(part.path(), noise(1024, 5)).unwrap();
    let sent = server
        .aws()
        .args([
            "s3api",
            "upload-part",
            "--bucket",
            "offsite",
            "--key",
            "crm/set/db.dump",
            "--part-number",
            "1",
        ])
        .args(["--upload-id", &upload_id, "--body"])
        .arg(part.path())
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );

    // s3s-fs keeps parts as `.upload_id-<id>.part-<n>` files in its root.
    let parts = || {
        std::fs::read_dir(server.root())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&format!(".upload_id-{upload_id}"))
            })
            .count()
    };
    assert!(parts() > 0);
    bucket
        .abort_upload("set/db.dump", &upload_id)
        .await
        .unwrap();
    assert_eq!(parts(), 0, "the parts are freed");
}

#[tokio::test]
async fn listing_pending_uploads_reports_a_service_that_cannot() {
    // s3s-fs does not implement ListMultipartUploads; the answer must be a clear error (copy
    // turns it into a warning), not a silent empty list.
    let server = S3Server::start();
    let bucket = server.bucket("crm/");
    let error = bucket.pending_uploads("crm/").await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("listing multipart uploads: HTTP 501"),
        "{error}"
    );
}
