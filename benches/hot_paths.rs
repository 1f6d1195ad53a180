//! Micro-benchmarks of the hot paths (issue 6): BER decode of a search
//! request and encode of an entry, filter evaluation, an indexed lookup
//! through the core, and the store's record codec.
//!
//!   cargo bench --bench hot_paths

use std::hint::black_box;

use bytes::BytesMut;
use convergences::config::Config;
use convergences::directory::{Actor, Dn, Entry, Filter, Principal, Scope, SearchRequest};
use convergences::store::Record;
use criterion::{Criterion, criterion_group, criterion_main};
use ldap3_proto::proto::{LdapDerefAliases, LdapFilter, LdapMsg, LdapOp, LdapSearchRequest, LdapSearchScope};
use tokio_util::codec::{Decoder, Encoder};

const AGENTS: &str = "ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";

fn agent(i: usize) -> Entry {
    let uid = format!("agent{i:05}");
    Entry::new(Dn::parse(&format!("uid={uid},{AGENTS}")).expect("dn"))
        .with("objectClass", ["top", "person", "organizationalPerson", "inetOrgPerson"])
        .with("uid", [uid.as_str()])
        .with("cn", [format!("Hélène Dupré {i}")])
        .with("sn", ["Dupré"])
        .with("givenName", ["Hélène"])
        .with("mail", [format!("{uid}@creteil.example.fr")])
        .with("employeeNumber", [format!("{:08}", 10_000_000 + i)])
        .with("title", ["Attachée territoriale"])
        .with("telephoneNumber", ["+33 1 45 17 10 00"])
        .with("userPassword", ["{SSHA}ZfhVcjIrLVSyofwCeutBLkFT4GpWalVR"])
}

fn ber(c: &mut Criterion) {
    let msg = LdapMsg::new(
        7,
        LdapOp::SearchRequest(LdapSearchRequest {
            base: "dc=cig,dc=fr".into(),
            scope: LdapSearchScope::Subtree,
            aliases: LdapDerefAliases::Never,
            sizelimit: 0,
            timelimit: 0,
            typesonly: false,
            filter: LdapFilter::Equality("uid".into(), "agent00042".into()),
            attrs: vec!["cn".into(), "mail".into(), "memberOf".into()],
        }),
    );
    let mut codec = ldap3_proto::LdapCodec::new(None, None);
    let mut wire = BytesMut::new();
    codec.encode(msg, &mut wire).expect("encode");
    // The connection's decoder, and ldap3_proto's alone for comparison.
    let mut requests = convergences::ldap::decode::RequestCodec::new(1 << 20);
    c.bench_function("ber/decode_search_request", |b| {
        b.iter(|| {
            let mut buf = wire.clone();
            black_box(requests.decode(&mut buf).expect("decode"))
        })
    });
    c.bench_function("ber/decode_search_request_ldap3_proto", |b| {
        b.iter(|| {
            let mut buf = wire.clone();
            black_box(codec.decode(&mut buf).expect("decode"))
        })
    });
    let e = agent(42);
    c.bench_function("ber/encode_search_entry", |b| {
        let mut out = Vec::with_capacity(1024);
        b.iter(|| {
            out.clear();
            convergences::ldap::ber::search_entry(&mut out, 7, black_box(&e));
            black_box(out.len())
        })
    });
}

fn filter(c: &mut Criterion) {
    let (_tmp, dir) = directory();
    let e = agent(42);
    let f = Filter::parse("(&(objectClass=inetOrgPerson)(|(uid=agent00042)(sn=Dup*)))").expect("filter");
    c.bench_function("filter/evaluate", |b| b.iter(|| black_box(f.evaluate(dir.schema(), black_box(&e)))));
}

fn directory() -> (tempfile::TempDir, convergences::directory::Directory) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = convergences::app::open_directory(&Config::for_test(tmp.path())).expect("directory");
    (tmp, dir)
}

fn index_lookup(c: &mut Criterion) {
    let (_tmp, dir) = directory();
    let actor = Actor::new("cn=admin,dc=cig,dc=fr");
    let containers = [
        (
            "dc=cig,dc=fr",
            vec![("objectClass", "dcObject"), ("objectClass", "organization"), ("dc", "cig"), ("o", "CIG")],
        ),
        ("ou=organisations,dc=cig,dc=fr", vec![("objectClass", "organizationalUnit"), ("ou", "organisations")]),
        ("o=219400280,ou=organisations,dc=cig,dc=fr", vec![("objectClass", "organization"), ("o", "219400280")]),
        (AGENTS, vec![("objectClass", "organizationalUnit"), ("ou", "agents")]),
    ];
    let mut changes = Vec::new();
    for (dn, attrs) in containers {
        let mut e = Entry::new(Dn::parse(dn).expect("dn"));
        for (a, v) in attrs {
            e.add_values(a, [v.as_bytes().to_vec()]);
        }
        changes.push(Ok(convergences::directory::Change::Add(e)));
    }
    changes.extend((0..10_000).map(|i| Ok(convergences::directory::Change::Add(agent(i)))));
    dir.apply_batch(&actor, changes, convergences::directory::AddMode::Import, |_| {}).expect("load");
    let mut i = 0usize;
    c.bench_function("directory/search_uid_eq_10k", |b| {
        b.iter(|| {
            i = (i + 7919) % 10_000;
            let f = Filter::Equality("uid".into(), format!("agent{i:05}").into_bytes());
            let mut req = SearchRequest::new(Dn::parse("dc=cig,dc=fr").expect("dn"), Scope::Sub, f);
            req.attrs = vec!["cn".into(), "mail".into()];
            let mut n = 0;
            dir.search(&Principal::Server, &req, |e| {
                n += e.attrs.len();
                Ok(())
            })
            .expect("search");
            black_box(n)
        })
    });
}

fn record_codec(c: &mut Criterion) {
    let e = agent(42);
    let rec = Record {
        parent: 4,
        dn: e.dn.to_string(),
        ndn: e.dn.to_string().to_lowercase(),
        attrs: e.attrs.iter().map(|a| (a.name.clone(), a.values.clone())).collect(),
        csn: None,
    };
    let bytes = rec.encode();
    c.bench_function("store/record_encode", |b| b.iter(|| black_box(black_box(&rec).encode())));
    c.bench_function("store/record_decode", |b| {
        b.iter(|| black_box(Record::decode(black_box(&bytes)).expect("decode")))
    });
}

criterion_group!(benches, ber, filter, index_lookup, record_codec);
criterion_main!(benches);
