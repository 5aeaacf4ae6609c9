# Per mapping name: private, shared, Pss, Pss lines, Pss lines of mappings with shared pages, swap, SwapPss
function flush() { if (have) { if (sh > 0) r[key] += 1; } have = 0; sh = 0 }
/^[0-9a-f]+-[0-9a-f]+ / { flush(); match($0, /^[^ ]+ [^ ]+ [^ ]+ [^ ]+ [^ ]+ */); key = $5 "|" substr($0, RLENGTH + 1); seen[key] = 1; next }
/^Private_Hugetlb:/ { ph[key] += $2; next }
/^Shared_Hugetlb:/ { shh[key] += $2; next }
/^Private/ { p[key] += $2; next }
/^Shared/ { s[key] += $2; sh += $2; next }
/^Pss:/ { pss[key] += $2; n[key] += 1; have = 1; next }
/^Swap:/ { sw[key] += $2; next }
/^SwapPss:/ { swp[key] += $2; next }
END { flush(); for (k in seen) printf "%s\t%d %d %d %d %d %d %d %d %d\n", k, p[k], s[k], ph[k], shh[k], pss[k], sw[k], swp[k], n[k], r[k] }
