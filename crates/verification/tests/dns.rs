//! DNS validation against a real DNS server on loopback, through the real resolver.

use std::time::Duration;

use hookline_testkit::dns::Transport;
use hookline_testkit::DnsServer;
use hookline_verification::{
    dns_challenge, domain_covers, validate_domain, DnsResolver, DnsValidationError, DomainName,
    VerificationToken,
};

fn resolver(server: &DnsServer) -> DnsResolver {
    DnsResolver::new(Some(server.addr), Duration::from_secs(2)).unwrap()
}

fn domain(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

#[tokio::test]
async fn a_published_challenge_validates_the_domain_and_covers_its_subdomains() {
    let dns = DnsServer::start().await;
    let token = VerificationToken::generate();
    let example = domain("Example.COM");
    let challenge = dns_challenge(&example, &token);
    assert_eq!(challenge.name, "_hookline-challenge.example.com");
    assert_eq!(challenge.value, format!("hookline-verification={token}"));
    // Other TXT values at the same name (another subscription's challenge) do not matter.
    dns.add_txt(
        &challenge.name,
        &format!("hookline-verification={}", VerificationToken::generate()),
    );
    dns.add_txt(&challenge.name, &challenge.value);

    validate_domain(&resolver(&dns), &example, &token)
        .await
        .unwrap();

    let asked = dns.queries();
    assert_eq!(asked[0].name, "_hookline-challenge.example.com");
    assert_eq!(asked[0].record_type, "TXT");

    let hook = url::Url::parse("https://hooks.eu.example.com/copernica.php").unwrap();
    assert!(domain_covers(&example, hook.host_str().unwrap()));
    let lookalike = url::Url::parse("https://hooks.badexample.com/copernica.php").unwrap();
    assert!(!domain_covers(&example, lookalike.host_str().unwrap()));
}

#[tokio::test]
async fn a_missing_name_is_reported_as_nxdomain_with_what_to_publish() {
    let dns = DnsServer::start().await;
    let token = VerificationToken::generate();

    let err = validate_domain(&resolver(&dns), &domain("example.com"), &token)
        .await
        .unwrap_err();

    assert!(
        matches!(err, DnsValidationError::NxDomain { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "looked up TXT _hookline-challenge.example.com: the name does not exist (NXDOMAIN); \
             publish TXT _hookline-challenge.example.com with the value \"hookline-verification={token}\""
        )
    );
    assert!(!err.is_retriable());
}

#[tokio::test]
async fn wrong_values_are_listed() {
    let dns = DnsServer::start().await;
    let token = VerificationToken::generate();
    let name = "_hookline-challenge.example.com";
    dns.add_txt(name, "hookline-verification=old");
    dns.add_txt(name, "v=spf1 -all");

    let err = validate_domain(&resolver(&dns), &domain("example.com"), &token)
        .await
        .unwrap_err();

    let DnsValidationError::WrongValues { found, .. } = &err else {
        panic!("{err:?}");
    };
    let mut found = found.clone();
    found.sort();
    assert_eq!(found, ["hookline-verification=old", "v=spf1 -all"]);
    let msg = err.to_string();
    assert!(
        msg.starts_with("looked up TXT _hookline-challenge.example.com: found 2 values "),
        "{msg}"
    );
    assert!(msg.contains("\"hookline-verification=old\""), "{msg}");
    assert!(msg.contains("\"v=spf1 -all\""), "{msg}");
    assert!(
        msg.ends_with(&format!("but not \"hookline-verification={token}\"")),
        "{msg}"
    );
}

#[tokio::test]
async fn a_name_without_txt_records_says_so() {
    let dns = DnsServer::start().await;
    let token = VerificationToken::generate();
    // Only a name *below* the challenge exists, so the challenge name exists but is empty.
    dns.add_txt("x._hookline-challenge.example.com", "unrelated");

    let err = validate_domain(&resolver(&dns), &domain("example.com"), &token)
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        format!(
            "looked up TXT _hookline-challenge.example.com: the name exists but has no TXT records; \
             publish one with the value \"hookline-verification={token}\""
        )
    );
}

#[tokio::test]
async fn publishing_after_a_failure_is_seen_at_once() {
    let dns = DnsServer::start().await;
    let token = VerificationToken::generate();
    let example = domain("example.com");
    let resolver = resolver(&dns);
    let challenge = dns_challenge(&example, &token);

    dns.add_txt(&challenge.name, "hookline-verification=typo");
    let err = validate_domain(&resolver, &example, &token)
        .await
        .unwrap_err();
    assert!(matches!(err, DnsValidationError::WrongValues { .. }));

    // The same resolver asks again rather than answering from a cache.
    dns.remove_txt(&challenge.name);
    dns.add_txt(&challenge.name, &challenge.value);
    validate_domain(&resolver, &example, &token).await.unwrap();

    dns.remove_txt(&challenge.name);
    let err = validate_domain(&resolver, &example, &token)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DnsValidationError::NxDomain { .. }),
        "{err:?}"
    );
    assert_eq!(dns.queries().len(), 3);
}

#[tokio::test]
async fn values_split_into_strings_and_large_answers_over_tcp_still_validate() {
    let dns = DnsServer::start().await;
    let token = VerificationToken::generate();
    let example = domain("example.com");
    let challenge = dns_challenge(&example, &token);
    // DNS providers split values into several character-strings; they are read joined.
    let (head, tail) = challenge.value.split_at(10);
    dns.add_txt_strings(&challenge.name, vec![head.into(), tail.into()]);
    // Enough other values that the answer does not fit in a 512-byte UDP message.
    for _ in 0..12 {
        dns.add_txt(
            &challenge.name,
            &format!("hookline-verification={}", VerificationToken::generate()),
        );
    }

    validate_domain(&resolver(&dns), &example, &token)
        .await
        .unwrap();

    let transports: Vec<Transport> = dns.queries().iter().map(|q| q.transport).collect();
    assert_eq!(transports, [Transport::Udp, Transport::Tcp]);
}

#[tokio::test]
async fn a_silent_nameserver_is_a_retriable_timeout() {
    let dns = DnsServer::start().await;
    dns.set_silent(true);
    let token = VerificationToken::generate();
    let resolver = DnsResolver::new(Some(dns.addr), Duration::from_millis(400)).unwrap();

    let started = std::time::Instant::now();
    let err = validate_domain(&resolver, &domain("example.com"), &token)
        .await
        .unwrap_err();

    // Bounded by the 400 ms timeout, not the resolver's default (5 s a try, two tries): under
    // 5 s, which leaves a loaded machine 4.6 s of tolerance and still tells the two apart.
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "bounded by the 400 ms timeout: took {took:?}"
    );
    assert!(err.is_retriable(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "looked up TXT _hookline-challenge.example.com: no answer within 400ms"
    );
    assert!(!dns.queries().is_empty(), "the question was asked");
}

#[tokio::test]
async fn internationalised_domains_are_looked_up_in_ascii() {
    let dns = DnsServer::start().await;
    let token = VerificationToken::generate();
    let bucher = domain("Bücher.example");
    let challenge = dns_challenge(&bucher, &token);
    assert_eq!(challenge.name, "_hookline-challenge.xn--bcher-kva.example");
    dns.add_txt(&challenge.name, &challenge.value);

    validate_domain(&resolver(&dns), &bucher, &token)
        .await
        .unwrap();
    assert!(domain_covers(&bucher, "hooks.bücher.example"));
}
