//! PROXY protocol v1 (text) and v2 (binary) headers, as sent by load balancers (HAProxy,
//! AWS NLB, ...) in front of a listener with `proxy_protocol = true`. Parsing is sans-I/O
//! ([`parse_v1`], [`parse_v2`]); [`read_header`] reads exactly the header's bytes from the
//! socket, so nothing of the client's own stream (TLS, WebSocket or MQTT) is consumed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 header, CRLF included (spec, section 2.1).
const V1_MAX: usize = 107;

/// Source and destination of the proxied connection; `None` for a LOCAL (v2) or UNKNOWN
/// (v1) header, a health check by the proxy itself: the socket's addresses stand.
pub(crate) type Addresses = Option<(SocketAddr, SocketAddr)>;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("no PROXY protocol header")]
    NotProxy,
    #[error("bad PROXY v1 header: {0}")]
    BadV1(&'static str),
    #[error("bad PROXY v2 header: {0}")]
    BadV2(&'static str),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Parses a complete v1 line (with its CRLF).
pub(crate) fn parse_v1(line: &[u8]) -> Result<Addresses, ProxyError> {
    let line = line
        .strip_suffix(b"\r\n")
        .ok_or(ProxyError::BadV1("no CRLF"))?;
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::BadV1("not ASCII"))?;
    let mut parts = line.split(' ');
    if parts.next() != Some("PROXY") {
        return Err(ProxyError::NotProxy);
    }
    let family = parts.next().ok_or(ProxyError::BadV1("no protocol"))?;
    if family == "UNKNOWN" {
        return Ok(None);
    }
    let mut next = || parts.next().ok_or(ProxyError::BadV1("missing field"));
    let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
    let ip = |s: &str| -> Result<IpAddr, ProxyError> {
        let ip: IpAddr = s.parse().map_err(|_| ProxyError::BadV1("bad address"))?;
        match (family, ip) {
            ("TCP4", IpAddr::V4(_)) | ("TCP6", IpAddr::V6(_)) => Ok(ip),
            ("TCP4" | "TCP6", _) => Err(ProxyError::BadV1("address does not match protocol")),
            _ => Err(ProxyError::BadV1("unknown protocol")),
        }
    };
    let port = |s: &str| -> Result<u16, ProxyError> {
        s.parse().map_err(|_| ProxyError::BadV1("bad port"))
    };
    if parts.next().is_some() {
        return Err(ProxyError::BadV1("extra fields"));
    }
    Ok(Some((
        SocketAddr::new(ip(src)?, port(sport)?),
        SocketAddr::new(ip(dst)?, port(dport)?),
    )))
}

/// Parses the v2 command/family bytes (13 and 14 of the header) and the address block.
pub(crate) fn parse_v2(ver_cmd: u8, family: u8, body: &[u8]) -> Result<Addresses, ProxyError> {
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::BadV2("version is not 2"));
    }
    match ver_cmd & 0x0f {
        0 => return Ok(None), // LOCAL
        1 => {}
        _ => return Err(ProxyError::BadV2("unknown command")),
    }
    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    match family {
        // TCP over IPv4
        0x11 if body.len() >= 12 => {
            let src = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let dst = Ipv4Addr::new(body[4], body[5], body[6], body[7]);
            Ok(Some((
                SocketAddr::new(src.into(), port(&body[8..10])),
                SocketAddr::new(dst.into(), port(&body[10..12])),
            )))
        }
        // TCP over IPv6
        0x21 if body.len() >= 36 => {
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&body[0..16]);
            d.copy_from_slice(&body[16..32]);
            Ok(Some((
                SocketAddr::new(Ipv6Addr::from(s).into(), port(&body[32..34])),
                SocketAddr::new(Ipv6Addr::from(d).into(), port(&body[34..36])),
            )))
        }
        0x11 | 0x21 => Err(ProxyError::BadV2("address block too short")),
        // UNSPEC, UDP or unix sockets: no usable client address.
        _ => Ok(None),
    }
}

/// Reads one v1 or v2 header from `rd`, byte-exact.
pub(crate) async fn read_header<R: AsyncRead + Unpin>(rd: &mut R) -> Result<Addresses, ProxyError> {
    // Every header is at least 12 bytes long ("PROXY UNKNOWN\r\n" is 15, v2 is 16+).
    let mut head = [0u8; 12];
    rd.read_exact(&mut head).await?;
    if head == V2_SIGNATURE {
        let mut rest = [0u8; 4];
        rd.read_exact(&mut rest).await?;
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let mut body = vec![0u8; len];
        rd.read_exact(&mut body).await?;
        return parse_v2(rest[0], rest[1], &body);
    }
    if !head.starts_with(b"PROXY ") {
        return Err(ProxyError::NotProxy);
    }
    let mut line = head.to_vec();
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX {
            return Err(ProxyError::BadV1("longer than 107 bytes"));
        }
        line.push(rd.read_u8().await?);
    }
    parse_v1(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn v1_lines_parse_and_bad_ones_are_refused() {
        let a = parse_v1(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 1883\r\n").unwrap();
        assert_eq!(
            a,
            Some((addr("192.0.2.7:40000"), addr("198.51.100.1:1883")))
        );
        let a = parse_v1(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n").unwrap();
        assert_eq!(a, Some((addr("[2001:db8::1]:1"), addr("[2001:db8::2]:2"))));
        assert_eq!(parse_v1(b"PROXY UNKNOWN\r\n").unwrap(), None);
        for bad in [
            &b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 1883\n"[..],
            b"PROXY TCP4 2001:db8::1 198.51.100.1 40000 1883\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 70000 1883\r\n",
            b"PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7\r\n",
        ] {
            assert!(parse_v1(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[tokio::test]
    async fn v2_headers_are_read_exactly_and_leave_the_stream_alone() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x21, 0x11, 0, 12, 10, 1, 2, 3, 192, 0, 2, 1]);
        h.extend_from_slice(&5555u16.to_be_bytes());
        h.extend_from_slice(&8883u16.to_be_bytes());
        h.extend_from_slice(b"\x10rest");
        let mut rd = &h[..];
        let a = read_header(&mut rd).await.unwrap();
        assert_eq!(a, Some((addr("10.1.2.3:5555"), addr("192.0.2.1:8883"))));
        assert_eq!(rd, b"\x10rest");
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(read_header(&mut &local[..]).await.unwrap(), None);
        let mut v1 = b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 1883\r\n\x10".to_vec();
        let mut rd = &v1[..];
        assert!(read_header(&mut rd).await.unwrap().is_some());
        assert_eq!(rd, b"\x10");
        v1.clear();
        v1.extend_from_slice(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c");
        assert!(matches!(
            read_header(&mut &v1[..]).await,
            Err(ProxyError::NotProxy)
        ));
    }
}
