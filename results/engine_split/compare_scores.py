import json,sys
def scores(p):
    s=json.load(open(p))
    out={}
    def walk(v,k):
        if isinstance(v,dict):
            for kk,vv in v.items(): walk(vv,k+'.'+kk)
        elif isinstance(v,(int,float)) and not isinstance(v,bool): out[k]=v
    for when in ('before','after'):
        walk(s.get(when,{}),when)
    for k in ('method','params','steps','seed'): out[k]=json.dumps(s.get(k),sort_keys=True)
    return out
a=scores(sys.argv[1]); b=scores(sys.argv[2])
diff=[k for k in sorted(set(a)|set(b)) if a.get(k)!=b.get(k)]
print(f"{len(a)} numbers compared; {len(diff)} differ")
for k in diff: print(k, a.get(k), b.get(k))
