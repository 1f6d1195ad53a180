import java.util.Hashtable;
import javax.naming.Context;
import javax.naming.NamingEnumeration;
import javax.naming.NamingException;
import javax.naming.directory.SearchControls;
import javax.naming.directory.SearchResult;
import javax.naming.ldap.Control;
import javax.naming.ldap.InitialLdapContext;
import javax.naming.ldap.LdapContext;
import javax.naming.ldap.PagedResultsControl;
import javax.naming.ldap.PagedResultsResponseControl;

/**
 * The login flow of a legacy Java application with the JDK's JNDI LDAP
 * provider: service bind, search by uid, bind as the DN found; then a paged
 * search with PagedResultsControl. One line per step; exit 1 on failure.
 */
public class LoginFlow {
    static LdapContext bind(String url, String dn, String password) throws NamingException {
        Hashtable<String, Object> env = new Hashtable<>();
        env.put(Context.INITIAL_CONTEXT_FACTORY, "com.sun.jndi.ldap.LdapCtxFactory");
        env.put(Context.PROVIDER_URL, url);
        env.put(Context.SECURITY_AUTHENTICATION, "simple");
        env.put(Context.SECURITY_PRINCIPAL, dn);
        env.put(Context.SECURITY_CREDENTIALS, password);
        return new InitialLdapContext(env, null);
    }

    public static void main(String[] args) throws Exception {
        String url = args[0], svcDn = args[1], svcPw = args[2], base = args[3], uid = args[4], pw = args[5];
        LdapContext svc = bind(url, svcDn, svcPw);
        System.out.println("service bind ok");

        SearchControls sc = new SearchControls();
        sc.setSearchScope(SearchControls.SUBTREE_SCOPE);
        sc.setReturningAttributes(new String[] {"cn", "mail"});
        NamingEnumeration<SearchResult> found = svc.search(base, "(uid={0})", new Object[] {uid}, sc);
        if (!found.hasMore()) {
            System.out.println("agent not found");
            System.exit(1);
        }
        SearchResult r = found.next();
        String dn = r.getNameInNamespace();
        System.out.println("found " + dn + " cn=" + r.getAttributes().get("cn").get());

        bind(url, dn, pw).close();
        System.out.println("agent bind ok");
        try {
            bind(url, dn, pw + "x").close();
            System.out.println("wrong password accepted");
        } catch (javax.naming.AuthenticationException e) {
            System.out.println("wrong password refused");
        }

        int total = 0, pages = 0;
        byte[] cookie = null;
        sc.setReturningAttributes(new String[] {"uid"});
        do {
            svc.setRequestControls(new Control[] {new PagedResultsControl(2, cookie, Control.CRITICAL)});
            NamingEnumeration<SearchResult> page = svc.search(base, "(objectClass=inetOrgPerson)", sc);
            while (page.hasMore()) {
                page.next();
                total++;
            }
            pages++;
            cookie = null;
            Control[] controls = svc.getResponseControls();
            if (controls != null) {
                for (Control c : controls) {
                    if (c instanceof PagedResultsResponseControl) {
                        cookie = ((PagedResultsResponseControl) c).getCookie();
                    }
                }
            }
        } while (cookie != null && cookie.length > 0);
        System.out.println("paged entries: " + total + " in " + pages + " pages");
        svc.close();
    }
}
