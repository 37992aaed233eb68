//! ISO 3166-1 alpha-2: the officially assigned country codes (249), for `country_iso` of
//! `cardholders/create` (REFERENCE.md §3). Pure data, no I/O.

/// Every officially assigned code, sorted, two letters each.
const CODES: &str = "\
ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZCACCCDCFCGCHCICKCLCMCN\
COCRCUCVCWCXCYCZDEDJDKDMDODZECEEEGEHERESETFIFJFKFMFOFRGAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGYHKHM\
HNHRHTHUIDIEILIMINIOIQIRISITJEJMJOJPKEKGKHKIKMKNKPKRKWKYKZLALBLCLILKLRLSLTLULVLYMAMCMDMEMFMGMHMK\
MLMMMNMOMPMQMRMSMTMUMVMWMXMYMZNANCNENFNGNINLNONPNRNUNZOMPAPEPFPGPHPKPLPMPNPRPSPTPWPYQARERORSRURW\
SASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTFTGTHTJTKTLTMTNTOTRTTTVTWTZUAUGUMUSUYUZVAVCVEVGVI\
VNVUWFWSYEYTZAZMZW";

/// Whether `code` is an officially assigned ISO 3166-1 alpha-2 code, in upper case (`DE`, not `de`).
pub fn is_iso3166_alpha2(code: &str) -> bool {
    code.len() == 2
        && code.bytes().all(|b| b.is_ascii_uppercase())
        && CODES.as_bytes().chunks(2).any(|c| c == code.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(CODES.len(), 249 * 2);
        let codes: Vec<&[u8]> = CODES.as_bytes().chunks(2).collect();
        assert!(
            codes.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        for ok in ["US", "DE", "GB", "AX", "ZW", "SS"] {
            assert!(is_iso3166_alpha2(ok), "{ok}");
        }
        for bad in ["XK", "UK", "EU", "us", "USA", "", "ZZ", "AA"] {
            assert!(!is_iso3166_alpha2(bad), "{bad}");
        }
    }
}
